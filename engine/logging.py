"""structlog configuration with a masking processor that runs last before rendering.

Event names are stable strings (``envelope.published``); fields are ids and counts. Three processors
keep personal data out of what slips through anyway:

* :func:`redact_file_fields`: a field named like a file (``file``, ``path``, ``moved_to``, ``receipt``,
  ``*_file``, ...) holding a name rather than an opaque reference is replaced by
  :func:`engine.redact.file_ref` (a file name may carry a patient's name and national number);
* :func:`_drop_exception_text`: exception info becomes its type (exception messages may quote values);
* :func:`mask_identifiers` (last before rendering): every mod-11-valid 11-digit number in any field or
  in the event text is masked (:func:`engine.ids.mask`), also when separators split it into groups
  (``090454 07176``: :data:`engine.redact.DIGIT_GROUPS`, the pattern reasons are masked with too).

The stdlib ``logging`` root (asyncio, pika, any library) is rendered by the same processors through
structlog's :class:`~structlog.stdlib.ProcessorFormatter`: a foreign record's text is cut to its first
line with quoted values dropped, and its traceback to the exception's type. Uncaught exceptions in
threads and in the main thread are logged the same way (``thread.crashed``, ``process.crashed``), never
printed as a plain traceback.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from pathlib import PurePath
from typing import Any

import structlog

from engine import ids
from engine.redact import DIGIT_GROUPS, file_ref, is_file_ref, safe_reason

#: field names that hold a file name or path (exact), and name endings that do
FILE_FIELDS = frozenset(
    {
        "file",
        "files",
        "filename",
        "file_name",
        "path",
        "paths",
        "moved_to",
        "receipt",
        "target",
        "source",
        "archived_as",
        "name_in_archive",
    }
)
_FILE_FIELD_SUFFIX = re.compile(r"_(?:file|files|filename|path|paths|receipt)$")
_NOT_DIGIT = re.compile(r"\D")
_HANDLER_MARK = "_enjournal_handler"


def is_file_field(key: str) -> bool:
    """True for a log field that carries a file name or path."""
    return key in FILE_FIELDS or bool(_FILE_FIELD_SUFFIX.search(key))


def _ref(value: Any) -> Any:
    if isinstance(value, PurePath):
        return file_ref(value)
    if isinstance(value, str):
        return value if not value or is_file_ref(value) else file_ref(PurePath(value))
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_ref(v) for v in value]
    return value  # counts (``files=3``) and None stay as they are


def redact_file_fields(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace the value of every file-named field by its opaque ``file-…`` reference."""
    for k in [k for k in event_dict if is_file_field(k)]:
        event_dict[k] = _ref(event_dict[k])
    return event_dict


def _mask_groups(match: re.Match[str]) -> str:
    """The matched digit run masked (:func:`engine.ids.mask`) when any 11 digits in a row of it are mod-11
    valid; otherwise (an order number, a count) left as it is."""
    text = match.group(0)
    digits = _NOT_DIGIT.sub("", text)
    if not any(ids.is_mod11_valid(digits[i : i + 11]) for i in range(len(digits) - 10)):
        return text
    return ids.mask(text)


def mask_text(text: str) -> str:
    """Mask every national-number-like digit run in ``text`` (contiguous or split into groups)."""
    return DIGIT_GROUPS.sub(_mask_groups, text)


def _mask_value(v: Any) -> Any:
    if isinstance(v, str):
        return mask_text(v)
    if isinstance(v, (list, tuple)):
        return type(v)(_mask_value(x) for x in v)
    if isinstance(v, dict):
        return {k: _mask_value(x) for k, x in v.items()}
    return v


def mask_identifiers(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask every mod-11-valid 11-digit number in every field (last line of defence)."""
    for k, v in list(event_dict.items()):  # exc_info and the stdlib record's keys are gone by now
        event_dict[k] = _mask_value(v)
    return event_dict


def _drop_exception_text(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace exception info by its type: exception messages may quote field values."""
    event_dict.pop("stack_info", None)
    exc = event_dict.pop("exc_info", None)
    if exc:
        info = sys.exc_info() if exc is True else exc
        if isinstance(info, BaseException):
            event_dict["error_type"] = type(info).__name__
        elif isinstance(info, tuple) and info[0] is not None:
            event_dict["error_type"] = info[0].__name__
    return event_dict


def _foreign_record(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A stdlib record (asyncio, pika, ...): its logger's name, and its text cut to the first line with
    quoted values dropped (``Task exception was never retrieved``; the rest repeats the exception)."""
    record = event_dict.get("_record")
    if record is not None and not event_dict.get("_from_structlog"):
        lines = str(event_dict.get("event", "")).strip().splitlines()
        event_dict["event"] = safe_reason(lines[0]) if lines else ""
        event_dict["logger"] = record.name
    return event_dict


def _processors(renderer: Any) -> list[Any]:
    """The processors every line goes through, last ones last: the test suite's own check of the events
    is inserted right before the last two (``mask_identifiers``, the renderer)."""
    return [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_exception_text,
        redact_file_fields,
        mask_identifiers,
        renderer,
    ]


def _stdlib_handler(renderer: Any, stream: Any) -> logging.Handler:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_foreign_record],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_processors(renderer)],
        keep_exc_info=False,
        keep_stack_info=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    return handler


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    structlog.get_logger("engine.thread").error(
        "thread.crashed", thread=getattr(args.thread, "name", None), error_type=args.exc_type.__name__
    )


def _process_excepthook(exc_type: type[BaseException], _exc: BaseException, _tb: Any) -> None:
    structlog.get_logger("engine.process").error("process.crashed", error_type=exc_type.__name__)


def _install_hooks() -> None:
    """Uncaught exceptions of threads and of the main thread are logged by type, not printed as tracebacks
    (only over Python's default hooks, and typer's: never over a test runner's)."""
    if threading.excepthook is threading.__excepthook__:
        threading.excepthook = _thread_excepthook
    if sys.excepthook is sys.__excepthook__ or getattr(sys.excepthook, "__module__", "") == "typer.main":
        sys.excepthook = _process_excepthook


def configure(level: str = "info", fmt: str = "console", stream: Any = None) -> None:
    """Configure structlog, the stdlib root logger and uncaught thread exceptions, once, in the CLI."""
    lvl = getattr(logging, level.upper(), logging.INFO)
    out = stream or sys.stderr
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *_processors(renderer)],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(_stdlib_handler(renderer, out))
    root.setLevel(max(lvl, logging.WARNING))
    _install_hooks()
    for noisy in ("pika", "kombu", "hl7apy", "sqlalchemy"):  # the engine logs these failures itself, by code
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
