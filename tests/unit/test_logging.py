"""No personal data in logs: the masking processor, and the national-id type that prints masked."""

from __future__ import annotations

import io
import logging
import re
import threading
from pathlib import Path

import orjson
import structlog

from engine import ids
from engine import logging as elog
from engine.model import Identifier
from engine.redact import file_ref, safe_reason
from tests.helpers import fnr


def test_masking_processor_masks_valid_numbers_in_any_field() -> None:
    buf = io.StringIO()
    elog.configure("debug", "json", stream=buf)
    n = fnr(5)
    structlog.get_logger("t").info("x.happened", note=f"id {n}", nested={"a": [n]}, count=3, pii_masking_selftest=True)
    line = buf.getvalue()
    assert n not in line and ids.mask(n) in line and '"count": 3' in line


def test_identifier_and_national_id_print_masked() -> None:
    n = fnr(6)
    assert n not in repr(Identifier(system=ids.OID_FNR, value=n, kind="FNR"))
    nid = ids.NationalId(n)
    assert n not in str(nid) and n not in repr(nid) and nid.value == n


def test_mod11_rules() -> None:
    assert ids.classify("13116900216") is ids.IdKind.FNR  # Line Danser, official test person
    assert ids.classify("45088649080") is ids.IdKind.DNR
    assert ids.classify("13116900217") is None
    assert ids.birth_date("13116900216").isoformat() == "1969-11-13"
    syn = ids.synthetic_fnr(13, 11, 1969, 100)
    assert syn is not None and ids.classify(syn) is ids.IdKind.FNR and ids.NationalId(syn).synthetic


def test_generated_ids_never_look_like_national_ids() -> None:
    from engine.envelope import new_id

    assert ids.log_safe("ab13116900216cd") == "ab1311690021mcd"
    assert ids.log_safe("3fa85f64-5717-4562-b3fc-2c963f66afa6") == "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    assert not any(ids.FNR_LIKE.search(new_id()) for _ in range(20000))


def test_digit_groups_split_by_separators_are_masked() -> None:
    n = fnr(8)
    text = elog.mask_text(f"svar {n[:6]} {n[6:]}.xml / {n[:4]}.{n[4:6]}-{n[6:]} / {n[:6]}  {n[6:]} / x{n}y")
    assert n[:6] not in text and n[6:] not in text and n not in text and text.count("*") >= 4 * 7
    assert elog.mask_text("order 12345 67890 1") == "order 12345 67890 1"  # 11 digits, not mod-11 valid


def test_file_named_fields_become_file_references() -> None:
    buf = io.StringIO()
    elog.configure("debug", "json", stream=buf)
    n = fnr(9)
    ref = file_ref("already.xml")
    structlog.get_logger("t").info(
        "file.seen",
        file=f"Bjornar Odegard {n}.xml",
        moved_to=f"/in/error/svar {n}.xml",
        receipt=Path(f"/out/apprec-{n}.xml"),
        source_file="Kari.hl7",
        files=2,
        target_path=["Kari.xml", ref],
        other=ref,
    )
    line = orjson.loads(buf.getvalue())
    assert "Odegard" not in buf.getvalue() and "Kari" not in buf.getvalue() and n not in buf.getvalue()
    assert line["file"] == file_ref(f"Bjornar Odegard {n}.xml") and line["files"] == 2
    assert line["moved_to"] == file_ref(f"svar {n}.xml") and line["target_path"][1] == ref
    assert line["receipt"].startswith("file-") and line["source_file"].endswith(".hl7")


def test_stdlib_records_go_through_the_masking_chain_without_traceback() -> None:
    buf = io.StringIO()
    elog.configure("debug", "json", stream=buf)
    n = fnr(10)
    try:
        raise ValueError(f"value 'O'Hara {n}' in {n[:6]} {n[6:]}")
    except ValueError:
        logging.getLogger("asyncio").exception("Exception in callback for 'O'Hara %s'\nhandle: <Handle %s>", n, n)
    out = buf.getvalue()
    line = orjson.loads(out)
    assert line["logger"] == "asyncio" and line["error_type"] == "ValueError" and line["level"] == "error"
    assert line["event"].startswith("Exception in callback for")
    assert n not in out and "Hara" not in out and "Traceback" not in out and n[6:] not in out


def test_uncaught_exception_in_a_thread_is_logged_by_type() -> None:
    n = fnr(13)
    with structlog.testing.capture_logs() as logs:
        try:
            raise RuntimeError(n)
        except RuntimeError as exc:
            elog._thread_excepthook(
                threading.ExceptHookArgs((RuntimeError, exc, exc.__traceback__, threading.current_thread()))
            )
    assert logs == [
        {
            "event": "thread.crashed",
            "thread": threading.current_thread().name,
            "error_type": "RuntimeError",
            "log_level": "error",
        }
    ]


def test_cli_crash_is_logged_by_type_without_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO

    n = fnr(14)
    script = tmp_path / "crash.py"
    script.write_text(
        "import typer\nfrom engine import logging as elog\napp = typer.Typer()\n\n@app.command()\n"
        f"def main() -> None:\n    elog.configure('info', 'json')\n    raise ValueError(\"O'Hara {n}\")\n\n"
        "app()\n"
    )
    r = subprocess.run(
        [sys.executable, str(script)],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 1 and '"event": "process.crashed"' in r.stderr and '"error_type": "ValueError"' in r.stderr
    assert n not in r.stderr + r.stdout and "Hara" not in r.stderr + r.stdout and "Traceback" not in r.stderr


def test_a_file_reference_keeps_only_a_known_file_type_as_its_suffix() -> None:
    n = fnr(11)
    for name in (f"svar {n}.Hansen", f"Kari.{n}", "svar.Nordmann"):  # a suffix that may be part of a name
        assert re.fullmatch(r"file-[0-9a-f]{10}", file_ref(name)), name
    assert file_ref("Lab Result.XML").endswith(".xml") and file_ref("a.hl7").endswith(".hl7")
    buf = io.StringIO()
    elog.configure("debug", "json", stream=buf)
    forged = "file-0123456789.Hansen"  # looks like a reference, but its suffix is not a file type
    structlog.get_logger("t").info("file.seen", file=forged, moved_to=file_ref("x.csv"))
    line = orjson.loads(buf.getvalue())
    assert "Hansen" not in buf.getvalue() and line["moved_to"] == file_ref("x.csv")


def test_reasons_and_logs_mask_the_same_digit_groups() -> None:
    n = fnr(12)
    variants = [
        f"{n[:6]}  {n[6:]}",
        f"{n[:4]}/{n[4:6]}/{n[6:]}",
        f"{n[:6]} {n[6:]}",
        f"{n[:4]}.{n[4:6]}-{n[6:]}",
        f"{n[:6]}_-{n[6:]}",
    ]
    for v in variants:
        reason = safe_reason(f"svar {v}.xml")
        logged = elog.mask_text(f"svar {v}.xml")
        assert n[:6] not in reason.replace(" ", "") and "#" in reason, v
        assert logged == f"svar {ids.mask(v)}.xml", v
