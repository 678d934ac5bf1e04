"""structlog configuration with a masking processor that runs last before rendering.

Event names are stable strings (``envelope.published``); fields are ids and counts. Whatever
slips through anyway (a mod-11-valid 11-digit number in any field or in the event text) is masked
by :func:`mask_identifiers` before the line is rendered.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, MutableMapping

import structlog

from engine import ids


def _mask_value(v: Any) -> Any:
    if isinstance(v, str):
        return ids.FNR_LIKE.sub(lambda m: ids.mask(m.group(0)) if ids.is_mod11_valid(m.group(0)) else m.group(0), v)
    if isinstance(v, (list, tuple)):
        return type(v)(_mask_value(x) for x in v)
    if isinstance(v, dict):
        return {k: _mask_value(x) for k, x in v.items()}
    return v


def mask_identifiers(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask every mod-11-valid 11-digit number in every field (last line of defence)."""
    for k, v in list(event_dict.items()):
        if k == "exc_info":
            continue
        event_dict[k] = _mask_value(v)
    return event_dict


def _drop_exception_text(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace exception info by its type: exception messages may quote field values."""
    exc = event_dict.pop("exc_info", None)
    if exc:
        info = sys.exc_info() if exc is True else exc
        if isinstance(info, BaseException):
            event_dict["error_type"] = type(info).__name__
        elif isinstance(info, tuple) and info[0] is not None:
            event_dict["error_type"] = info[0].__name__
    return event_dict


def configure(level: str = "info", fmt: str = "console", stream: Any = None) -> None:
    """Configure structlog (and the stdlib root logger) once, in the CLI."""
    lvl = getattr(logging, level.upper(), logging.INFO)
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_exception_text,
            mask_identifiers,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(lvl, logging.WARNING), stream=stream or sys.stderr)
    for noisy in ("pika", "kombu", "hl7apy", "sqlalchemy"):  # the engine logs these failures itself, by code
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
