"""Synthetic lab report sequences: one order with several analyses, sent as a lab sends it over time.

The stages, in clinical order (each message carries every analysis of the order, in the state the lab has
it in at that stage, unless :func:`lab_sequence` is told to leave pending ones or a cancellation's out):

* ``preliminary``: the first analysis has a preliminary value, the others are pending (no value yet);
* ``partial``: the first two are final, the others still pending;
* ``final``: all final;
* ``corrected``: the first analysis changed (a new value, marked as a change from then on);
* ``retract``: the third analysis retracted (cancelled), the rest as before;
* ``cancel``: the whole report cancelled.

:func:`lab_sequence` builds the messages for a chosen subset of stages, with times that never decrease along
the clinical order (a stage may share its second with the one before it), in two formats:

* HL7 v2.5 ORU^R01: OBR-25 (P, F, C, X) and OBX-11 (P preliminary, I pending, F, C corrected, X or D
  retracted), OBR-22 and MSH-7 the stage time, OBX-14 the collection time; filler order OBR-3.
* KITH Svarrapport v1.4 (the SAREPTA biokjemi shapes): report ``ServType`` N (first report), A (a supplement:
  more results), M (a change), C (cancellation, with its items or without, as the SAREPTA example); report
  ``Status`` P or F; per item ``ServType`` (N, M once changed), ``StatusInvestigation`` (2 preliminary,
  15 in process, 3 final), a retracted item as ``ServType`` C (SAREPTA) or ``StatusInvestigation`` 14
  (undersøkelse slettet), and ``IdResultItem``; ``ServProvId`` the lab's report id, ``IssueDate`` and
  ``GenDate`` the stage time.

:func:`expected_state` is what a clinician must see after all of them: the state of the clinically latest
stage. Synthetic identity numbers only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal
from xml.sax.saxutils import escape

STAGES = ("preliminary", "partial", "final", "corrected", "retract", "cancel")
State = Literal["pending", "preliminary", "final", "corrected", "cancelled"]
T0 = datetime(2026, 3, 16, 9, 0, 0)  # naive: local (Oslo) time, as the senders write it
COLLECTED = datetime(2026, 3, 16, 7, 45, 0)
LAB_HER = "59"
HL7_FACILITY = "TESTLAB_HF"
FILLER = "LAB-7001"


@dataclass(frozen=True)
class Analysis:
    code: str
    display: str
    unit: str
    item_id: str  # the lab's IdResultItem
    value: float  # the final value
    preliminary: float  # the preliminary value (first analysis only)
    corrected: float  # the corrected value (first analysis only)


ANALYSES = (
    Analysis("NOR05172", "B-Hemoglobin", "g/dL", "118891129", 13.5, 13.1, 12.0),
    Analysis("NPU02593", "B-Leukocytter", "10E9/L", "118891128", 7.2, 7.2, 7.2),
    Analysis("NPU19748", "P-CRP", "mg/L", "118891127", 41.0, 41.0, 41.0),
    Analysis("NPU03429", "P-Natrium", "mmol/L", "118891126", 139.0, 139.0, 139.0),
)
RETRACTED = 2  # the analysis the ``retract`` stage withdraws


@dataclass(frozen=True)
class Item:
    analysis: Analysis
    state: State
    value: float | None
    item_id: str | None  # None: sent without IdResultItem


@dataclass(frozen=True)
class LabMessage:
    stage: str
    index: int  # position in clinical order
    time: datetime
    items: tuple[Item, ...]  # the analyses the message carries
    whole_cancel: bool = False


def _items_at(stage: str) -> tuple[Item, ...]:
    """The lab's state of every analysis at ``stage``."""
    out = []
    for i, a in enumerate(ANALYSES):
        state: State
        value: float | None
        if stage == "preliminary":
            state, value = ("preliminary", a.preliminary) if i == 0 else ("pending", None)
        elif stage == "partial":
            state, value = ("final", a.value) if i < 2 else ("pending", None)
        elif stage == "final":
            state, value = "final", a.value
        elif i == 0:  # corrected, retract, cancel: the first analysis carries its corrected value
            state, value = "corrected", a.corrected
        else:
            state, value = "final", a.value
        if stage == "retract" and i == RETRACTED:
            state, value = "cancelled", None
        if stage == "cancel":
            state = "cancelled"
        out.append(Item(a, state, value, a.item_id))
    return tuple(out)


def lab_sequence(
    stages: tuple[str, ...] | list[str],
    same_second: frozenset[str] = frozenset(),
    pending_without_id: bool = False,
    retract_id: str | None = None,
    pending_sent: bool = True,
    cancel_items: bool = True,
) -> list[LabMessage]:
    """The messages of ``stages`` (any subset of :data:`STAGES`) in clinical order.

    ``same_second``: stages sent in the same second as the stage before them. ``pending_without_id``: pending
    items are sent without ``IdResultItem`` (KITH). ``retract_id``: the ``IdResultItem`` the retraction names
    (a sender typo when it differs from the original's). ``pending_sent``: pending analyses are in the message
    (else left out until they have a value). ``cancel_items``: a whole cancellation lists the analyses (else
    it carries none, as the SAREPTA Svarrapport example).
    """
    chosen = [s for s in STAGES if s in stages]
    out: list[LabMessage] = []
    t = T0
    for n, stage in enumerate(chosen):
        if n and stage not in same_second:
            t += timedelta(minutes=30 * (STAGES.index(stage) - STAGES.index(chosen[n - 1])))
        items = _items_at(stage)
        if pending_without_id:
            items = tuple(replace(it, item_id=None) if it.state == "pending" else it for it in items)
        if not pending_sent:
            items = tuple(it for it in items if it.state != "pending")
        if stage == "cancel" and not cancel_items:
            items = ()
        if retract_id is not None:
            items = tuple(replace(it, item_id=retract_id) if it.state == "cancelled" else it for it in items)
        out.append(LabMessage(stage, STAGES.index(stage), t, items, whole_cancel=stage == "cancel"))
    return out


def expected_state(messages: list[LabMessage]) -> tuple[str | None, dict[str, tuple[State, float | None]]]:
    """(report status, {analysis code: (status, value)}) after all ``messages``: the latest stage's state;
    a pending analysis is a preliminary record without value; a retracted one is cancelled (its value not
    compared: None). The report status is only known for KITH (HL7 ORU gives no report record)."""
    last = max(messages, key=lambda m: m.index)
    items: dict[str, tuple[State, float | None]] = {}
    for it in last.items:
        state: State = "preliminary" if it.state == "pending" else it.state
        items[it.analysis.code] = (state, None if state == "cancelled" else it.value)
    if last.whole_cancel:  # a cancellation without items cancels what the earlier reports carried
        items |= {it.analysis.code: ("cancelled", None) for m in messages for it in m.items}
    report = {"preliminary": "preliminary", "partial": "preliminary", "final": "final"}.get(last.stage)
    return report or ("cancelled" if last.stage == "cancel" else "corrected"), items


# -- HL7 v2.5 ORU^R01 ------------------------------------------------------------------------------------------
_OBX11 = {"pending": "I", "preliminary": "P", "final": "F", "corrected": "C"}
_OBR25 = {"preliminary": "P", "partial": "P", "final": "F", "corrected": "C", "retract": "C", "cancel": "X"}


def _ts(t: datetime) -> str:
    return t.strftime("%Y%m%d%H%M%S")


def _segment(name: str, fields: dict[int, str]) -> str:
    n = max(fields)
    return "|".join([name, *(fields.get(i, "") for i in range(1, n + 1))])


def hl7_message(m: LabMessage, fnr: str, retract_code: str = "X", msh_time_only: bool = False) -> bytes:
    """One ORU^R01 for ``m``; ``retract_code`` is OBX-11 of a retracted analysis (X or D);
    ``msh_time_only``: OBR-22 left empty, the stage time only in MSH-7."""
    segs = [
        "MSH|^~\\&|LABSYS|" + HL7_FACILITY + "|ENJOURNAL|KOMMUNE|" + _ts(m.time) + "||ORU^R01^ORU_R01|"
        f"CTL-{m.index}-{m.stage}|P|2.5|||AL|NE|NOR|UNICODE UTF-8",
        f"PID|1||{fnr}^^^&2.16.578.1.12.4.1.4.1&ISO^NNNOR||Testesen^Kari",
        f"ORC|RE|REK-42^EPJ|{FILLER}^LABSYS",
        _segment(
            "OBR",
            {
                1: "1",
                2: "REK-42^EPJ",
                3: f"{FILLER}^LABSYS",
                4: "PANEL1^Blodprøver^L",
                7: _ts(COLLECTED),
                22: "" if msh_time_only else _ts(m.time),
                25: _OBR25[m.stage],
            },
        ),
    ]
    for n, it in enumerate(m.items, 1):
        cancelled = it.state == "cancelled"
        segs.append(
            _segment(
                "OBX",
                {
                    1: str(n),
                    2: "NM",
                    3: f"{it.analysis.code}^{it.analysis.display}^NLK",
                    5: "" if it.value is None or cancelled else f"{it.value:g}",
                    6: it.analysis.unit,
                    11: retract_code if cancelled else _OBX11[it.state],
                    14: _ts(COLLECTED),
                },
            )
        )
    return ("\r".join(segs) + "\r").encode()


# -- KITH Svarrapport v1.4 --------------------------------------------------------------------------------------
_SERV_TYPE = {"preliminary": "N", "partial": "A", "final": "A", "corrected": "M", "retract": "M", "cancel": "C"}
_SERV_TYPE_DN = {"N": "Ny", "A": "Tillegg", "M": "Endring", "C": "Kansellering"}
_ITEM = {  # state -> (ServType, StatusInvestigation V, DN)
    "pending": ("N", "15", "I prosess"),
    "preliminary": ("N", "2", "Foreløpig"),
    "final": ("N", "3", "Endelig"),
    "corrected": ("M", "3", "Endelig"),
    "cancelled": ("C", "3", "Endelig"),
}


def _kith_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


_DELETED = ("M", "14", "Undersøkelse slettet")


def _kith_item(it: Item, retract_style: str) -> str:
    serv, inv, inv_dn = _DELETED if it.state == "cancelled" and retract_style == "14" else _ITEM[it.state]
    a = it.analysis
    parts = []
    if it.value is not None and it.state != "cancelled":
        parts.append(f'<NumResult><NumResultValue V="{it.value:g}" U="{escape(a.unit)}"/></NumResult>')
    parts.append(f'<ServType V="{serv}" DN="{_SERV_TYPE_DN[serv]}"/>')
    parts.append(
        f'<Investigation><Id V="{a.code}" S="2.16.578.1.12.4.1.1.7280" DN="{escape(a.display)}"/></Investigation>'
    )
    if it.state == "cancelled":
        parts.append("<Comment>Svaret er trukket tilbake.</Comment>")
    if it.item_id is not None:
        parts.append(f"<IdResultItem>{it.item_id}</IdResultItem>")
    parts.append(f'<StatusInvestigation V="{inv}" DN="{inv_dn}"/>')
    parts.append("<RefAnalysedSubject>1</RefAnalysedSubject>")
    return "<ResultItem>" + "".join(parts) + "</ResultItem>"


def kith_message(m: LabMessage, fnr: str, retract_style: str = "C", gen_time_only: bool = False) -> bytes:
    """One Svarrapport v1.4 for ``m``; ``retract_style`` marks a retracted item by ``ServType`` C or by
    ``StatusInvestigation`` 14; ``gen_time_only``: ``IssueDate`` stays the first report's, the stage time is
    only in ``GenDate`` (as the SAREPTA cancellation)."""
    serv = _SERV_TYPE[m.stage]
    status = ("P", "Foreløpig") if m.stage in ("preliminary", "partial") else ("F", "Endelig rapport")
    items = "".join(_kith_item(it, retract_style) for it in m.items)
    when = _kith_time(m.time)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Message xmlns="http://www.kith.no/xmlstds/labsvar/2012-02-15">
<Type V="SVAR_LAB" DN="Svarrapport-Laboratoriemedisin"/>
<MIGversion>v1.4 2012-02-15</MIGversion>
<GenDate V="{when}"/>
<MsgId>msg-{m.index}-{m.stage}</MsgId>
<ServReport>
<ServType V="{serv}" DN="{_SERV_TYPE_DN[serv]}"/>
<IssueDate V="{_kith_time(T0) if gen_time_only else when}"/>
<Status V="{status[0]}" DN="{status[1]}"/>
<MsgDescr V="CLIN" DN="Medisinsk biokjemi"/>
<ServProvId>R-2026-0042</ServProvId>
<ServReq><IssueDate V="2026-03-16"/><Id>REQ-42</Id></ServReq>
<Patient>
<Name>Testesen, Kari</Name>
<OffId>{fnr}</OffId>
<TypeOffId V="FNR" DN="Fødselsnummer"/>
<AnalysedSubject><CollectedSample><CollectedDate V="{_kith_time(COLLECTED)}"/></CollectedSample>
<TypeCoded S="2.16.578.1.12.4.1.1.8351" V="B" DN="Blod"/><Number>1</Number><IdByServProvider>1</IdByServProvider>
</AnalysedSubject>
{items}
</Patient>
<ServProvider><HCP><Inst><Name>Testlaboratoriet</Name><Id>{LAB_HER}</Id><TypeId V="HER" DN="HER-id"/></Inst></HCP>
</ServProvider>
</ServReport>
</Message>
""".encode()
