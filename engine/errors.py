"""The error tree of enjournal.

Two families decide what happens to a message::

    EnjournalError
    ├── ConfigError              bad configuration; the CLI exits with status 2
    ├── TransientError           retry (tenacity), then requeue; nothing is dead-lettered
    │   ├── BusUnavailable       broker down, connection lost, confirm timed out
    │   └── StoreUnavailable     database down or locked
    └── PermanentError           dead-letter at once with a stable ``code``
        ├── ParseError           the bytes are not a well-formed message of the declared format
        ├── ValidationError      well-formed but invalid (schema, missing required part)
        ├── UnsupportedMessage   a message type no mapping handles
        └── MappingError         the mapping could not build canonical records

Messages carry codes and positions, never field values: a parser error that quotes
the offending value must be wrapped (``from None``) so no personal data reaches a log.
"""

from __future__ import annotations


class EnjournalError(Exception):
    """Root of every error enjournal raises on purpose."""

    code: str = "ENJOURNAL_ERROR"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        if code is not None:
            self.code = code
        super().__init__(message or self.code)

    @property
    def reason(self) -> str:
        """``CODE: message`` as written to dead letters, reason files and NAKs."""
        msg = str(self)
        return self.code if msg == self.code else f"{self.code}: {msg}"


class ConfigError(EnjournalError):
    code = "CONFIG_INVALID"


class TransientError(EnjournalError):
    code = "TRANSIENT"


class BusUnavailable(TransientError):
    code = "BUS_UNAVAILABLE"


class StoreUnavailable(TransientError):
    code = "STORE_UNAVAILABLE"


class PermanentError(EnjournalError):
    code = "PERMANENT"


class ParseError(PermanentError):
    code = "PARSE_ERROR"


class ValidationError(PermanentError):
    code = "VALIDATION_ERROR"


class UnsupportedMessage(PermanentError):
    code = "UNSUPPORTED_MESSAGE"


class MappingError(PermanentError):
    code = "MAPPING_ERROR"
