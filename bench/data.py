"""Deterministic synthetic data for the benchmark (seeded; the same seed gives the same bytes).

* :func:`patients`: synthetic national ids (month + 80, valid mod 11, ``engine.ids.synthetic_fnr``),
  a local id and Norwegian names with æøå;
* :func:`adt_a08` / :func:`oru_r01`: HL7 v2.5 ADT^A08 and ORU^R01 (8 OBX), MSH-18 ``8859/1``, encoded
  ISO-8859-1, PID-3 ``<fnr>^^^&2.16.578.1.12.4.1.4.1&ISO^NNNOR~<local>^^^SYKEHUSET_HF^PI``;
* :func:`svarrapport`: KITH Svarrapport 1.4 from the synthetic template in ``tests/fixtures/kith``,
  with MsgId, ServProvId, requisition id, patient ids, result item ids and values varied;
* :func:`csv_rows` / :data:`CSV_HEADER`: a 20-column ``;``-separated care-decision export (UTF-8),
  matching :func:`csv_spec` (a bench variant of ``deploy/csv/vedtak.yaml``).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.ids import synthetic_fnr

KITH_TEMPLATE = (
    Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "kith" / "synthetic_svarrapport_v1.4.xml"
)
FAMILY = ("Ødegård", "Bjørnstad", "Åsheim", "Særheim", "Kværnes", "Løvås", "Hågensen", "Brænd", "Nilsen", "Dæhlie")
GIVEN = ("Åse", "Bjørn", "Kjærsti", "Øystein", "Sølvi", "Ørjan", "Håkon", "Mette", "Pål", "Ingrid")
OBX = (  # code, text, value type, base value, unit, range
    ("NPU02319", "Hemoglobin;B", "NM", 13.5, "g/dL", "11.7-15.3"),
    ("NPU01960", "Leukocytter;B", "NM", 7.2, "10*9/L", "3.5-10.0"),
    ("NPU03568", "Trombocytter;B", "NM", 250.0, "10*9/L", "145-390"),
    ("NPU19748", "CRP;P", "NM", 4.0, "mg/L", "<5"),
    ("NPU01370", "Natrium;P", "NM", 140.0, "mmol/L", "137-145"),
    ("NPU03230", "Kalium;P", "NM", 4.1, "mmol/L", "3.5-5.0"),
    ("NPU04998", "Kreatinin;P", "NM", 80.0, "umol/L", "45-90"),
    ("NOR00000", "Kommentar", "TX", 0.0, "", ""),
)


@dataclass(frozen=True, slots=True)
class Patient:
    fnr: str
    local: str
    family: str
    given: str
    birth: str  # yyyymmdd
    sex: str


def patients(n: int, seed: int = 42) -> list[Patient]:
    """``n`` distinct synthetic patients (valid mod-11 numbers with month + 80)."""
    rng, out, seen = random.Random(seed), list[Patient](), set[str]()
    while len(out) < n:
        day, month, year, ind = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1940, 2020), rng.randint(0, 499)
        fnr = synthetic_fnr(day, month, year, ind)
        if fnr is None or fnr in seen:
            continue
        seen.add(fnr)
        out.append(
            Patient(
                fnr,
                f"L{len(out):07d}",
                rng.choice(FAMILY),
                rng.choice(GIVEN),
                f"{year:04d}{month:02d}{day:02d}",
                rng.choice("MF"),
            )
        )
    return out


def _pid(p: Patient) -> str:
    return (
        f"PID|1||{p.fnr}^^^&2.16.578.1.12.4.1.4.1&ISO^NNNOR~{p.local}^^^SYKEHUSET_HF^PI||"
        f"{p.family}^{p.given}^^^^^L||{p.birth}|{p.sex}|||Storgata {1 + int(p.local[1:]) % 90}^^Tromsø^^9008^NOR^H"
    )


def _msh(app: str, kind: str, control: str, ts: str) -> str:
    return f"MSH|^~\\&|{app}|SYKEHUSET_HF|ENJOURNAL|KOMMUNE|{ts}||{kind}|{control}|P|2.5|||AL|NE|NOR|8859/1"


def _ts(i: int) -> str:
    return f"2026{1 + i % 12:02d}{1 + i % 28:02d}{i % 24:02d}{i % 60:02d}00"


def adt_a08(i: int, p: Patient, run: str = "B") -> bytes:
    """One ADT^A08 (patient update) with a visit; unique MSH-10 and visit number per ``i``."""
    ts = _ts(i)
    segs = [
        _msh("DIPS", "ADT^A08^ADT_A01", f"{run}A{i:09d}", ts),
        f"EVN|A08|{ts}",
        _pid(p),
        (
            f"PV1|1|I|MED^{200 + i % 50}^1^SYKEHUSET_HF|A|||||||||||||||V{i:09d}^^^SYKEHUSET_HF^VN"
            f"|||||||||||||||||||||||||{ts}"
        ),
    ]
    return ("\r".join(segs) + "\r").encode("iso-8859-1")


def _obx(n: int, i: int, rng: random.Random) -> str:
    code, text, vt, base, unit, rng_txt = OBX[n]
    if vt == "TX":
        return f"OBX|{n + 1}|TX|{code}^{text}^NLK||Prøven er litt hemolysert, tolkes med forsiktighet.||||||F"
    value = round(base * rng.uniform(0.7, 1.3), 1)
    return f"OBX|{n + 1}|NM|{code}^{text}^NLK||{value}|{unit}|{rng_txt}||||F|||{_ts(i)}"


def oru_r01(i: int, p: Patient, run: str = "B", seed: int = 42) -> bytes:
    """One ORU^R01 with 8 OBX (7 numeric + a comment); unique MSH-10 and filler order number."""
    rng, ts = random.Random(seed * 1_000_003 + i), _ts(i)
    segs = [
        _msh("LABSYS", "ORU^R01^ORU_R01", f"{run}O{i:09d}", ts),
        _pid(p),
        f"OBR|1|REK-{i}^DIPS|LAB-{i:09d}^LABSYS|NPU-PANEL^Blodprøver^L|||{ts}||||||||BLD&Blod&HL70070|||||||{ts}|||F",
    ]
    segs += [_obx(n, i, rng) for n in range(8)]
    return ("\r".join(segs) + "\r").encode("iso-8859-1")


def hl7_file(messages: list[bytes]) -> bytes:
    """Messages one after the other (segments CR, a blank line between messages)."""
    return b"\n".join(messages)


def kith_template() -> str | None:
    return KITH_TEMPLATE.read_text(encoding="utf-8") if KITH_TEMPLATE.exists() else None


_KITH_SWAPS = (
    "5f0c1a2e-0b7d-4c59-9a61-3f1d2b7c8e01",
    "b7e3c9d4-2f61-4e0a-8c55-6a1d0e9f3b21",
    "0d9a7c11-52e4-4b8f-a3c6-7e2f91b04d55",
)


def svarrapport(i: int, p: Patient, template: str, seed: int = 42) -> bytes:
    """The template with fresh MsgId / ServProvId / requisition id, this patient, new result ids and values."""
    rng = random.Random(seed * 7_919 + i)
    text = template
    for k, old in enumerate(_KITH_SWAPS):
        text = text.replace(old, str(uuid.UUID(int=rng.getrandbits(128) | (k << 120), version=4)))
    text = text.replace("24838541212", p.fnr).replace("L-7700123", f"L-{p.local}")
    text = text.replace("Testesen, Kari", f"{p.family}, {p.given}")
    for n in range(1, 5):
        text = text.replace(f"<IdResultItem>90000{n}</IdResultItem>", f"<IdResultItem>{i * 10 + n}</IdResultItem>")
    for old in ('V="12.4"', 'V="118"', 'V="0.6"', 'V="1.1"'):
        base = float(old[3:-1])
        text = text.replace(old, f'V="{round(base * rng.uniform(0.7, 1.3), 1)}"', 1)
    return text.encode("utf-8")


CSV_HEADER = (
    "vedtak_id",
    "fødselsnummer",
    "klient_nr",
    "etternavn",
    "fornavn",
    "tjeneste",
    "tjeneste_tekst",
    "vedtaksdato",
    "fra_dato",
    "til_dato",
    "timer_per_uke",
    "enhet",
    "status",
    "saksbehandler",
    "kommune",
    "bydel",
    "adresse",
    "postnr",
    "poststed",
    "merknad",
)
_SERVICES = (
    ("HJSP", "Praktisk bistand"),
    ("HJSY", "Hjemmesykepleie"),
    ("TRYGG", "Trygghetsalarm"),
    ("KORT", "Korttidsopphold"),
    ("MATL", "Matombringing"),
)


def csv_rows(n: int, pats: list[Patient], seed: int = 42) -> Iterator[str]:
    """``n`` data lines (no header), ``;``-separated, 20 columns each."""
    rng = random.Random(seed)
    for i in range(n):
        p, (code, text) = pats[i % len(pats)], _SERVICES[i % len(_SERVICES)]
        d, m = 1 + i % 28, 1 + (i // 28) % 12
        yield ";".join(
            (
                f"V-{i:08d}",
                p.fnr,
                f"K{p.local}",
                p.family,
                p.given,
                code,
                text,
                f"{d:02d}.{m:02d}.2025",
                f"{d:02d}.{m:02d}.2025",
                "",
                f"{rng.randint(1, 40)},5",
                "Hjemmetjenesten Sør",
                "Aktiv",
                "Saksbehandler Ås",
                "Tromsø",
                "Sentrum",
                f"Storgata {i % 90}",
                "9008",
                "Tromsø",
                "Ingen merknad",
            )
        )


def write_csv(path: Path, n: int, pats: list[Patient], seed: int = 42) -> int:
    """Write the header and ``n`` rows (UTF-8, ``\\n``); returns the file size in bytes."""
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write(";".join(CSV_HEADER) + "\n")
        for line in csv_rows(n, pats, seed):
            f.write(line + "\n")
    return path.stat().st_size


def csv_spec() -> dict[str, Any]:
    """The declarative spec for :data:`CSV_HEADER` (care events, code table inline)."""
    return {
        "kind": "care_event",
        "source": "bench.vedtak",
        "key": ["vedtak_id"],
        "subject": {"national": "fødselsnummer", "local": "klient_nr", "scope": "bench"},
        "event_time": {"column": "vedtaksdato", "formats": ["dd.mm.yyyy"]},
        "decimal_comma": True,
        "required": ["tjeneste"],
        "fields": {
            "event_code": {"column": "tjeneste", "table": "tjenester"},
            "description": "tjeneste_tekst",
            "facility": "enhet",
            "occurred_at": {"column": "fra_dato", "formats": ["dd.mm.yyyy"]},
        },
        "tables": {
            "tjenester": {
                "system": "2.16.578.1.12.4.1.1.9151",
                "strict": False,
                "codes": {"HJSP": "1", "HJSY": "6", "TRYGG": "11", "KORT": "17", "MATL": "3"},
            }
        },
    }
