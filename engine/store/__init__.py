"""The journal store (SQLAlchemy Core): SQLite by default, PostgreSQL in production, same code."""

from engine.store.journal import BatchStats, Outcome, Store

__all__ = ["BatchStats", "Outcome", "Store"]
