"""Who is asking: the principal a verified token (or the OS user of the CLI) stands for.

The read side (``enjournal serve``) and the CLI build a :class:`Principal` once per request; access control
(:mod:`engine.auth.policy`) and the audit log (:mod:`engine.audit`) take it as it is. ``repr()`` masks the
citizen's national id, so a principal that reaches a log line carries no personal data.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from engine import ids

Role = Literal["clinician", "citizen", "ops", "auditor", "local"]


class Principal(BaseModel):
    """A verified caller.

    * ``actor``: a stable id for the audit log (``hpr:9144900``, ``pid:<masked in repr>``, ``ops:<sub>``,
      ``os:<user>``); ``role`` one of :data:`Role` (``local``: ``auth.mode: none`` on 127.0.0.1, or the
      engine's own CLI user);
    * ``scopes``: SMART v2-style scopes granted (``patient/*.rs``, ``user/Observation.rs``, ``system/*.rs``);
    * ``purpose``: the stated purpose of use (clinicians: ``TREAT``, ``ETREAT`` ...);
    * ``citizen``: the national id a citizen token is about (citizen role only);
    * ``hpr``: a clinician's HPR number; ``break_glass``: the reason an ops user gave for reading content.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: str
    role: Role
    scopes: frozenset[str] = frozenset()
    purpose: str | None = None
    citizen: str | None = None
    hpr: str | None = None
    break_glass: str | None = None
    client: str | None = None  # the client address, for the audit log

    def __repr__(self) -> str:
        who = ids.mask(self.citizen) if self.citizen else self.actor
        return f"Principal({self.role}, {who})"

    __str__ = __repr__
