"""The audit log of reads: who read which citizen's journal, why, and what the answer was."""

from engine.audit.log import AuditEntry, AuditLog, AuditRecord, Broken, citizen_keys

__all__ = ["AuditEntry", "AuditLog", "AuditRecord", "Broken", "citizen_keys"]
