"""The ``enjournal`` command line.

``run`` (adapters + workers from the config), ``check`` (config, bus, store), ``map FILE`` (what a
message would become, writing nothing), ``journal ID`` (a citizen's journal), ``status``,
``attachment SHA256`` (an attachment's bytes), ``config schema``, ``import ADAPTER FILE`` (one-off CSV
import), ``dead-letters`` / ``replay``, ``serve`` (the FHIR API), ``demo`` (the ``make run`` demo on the
embedded default).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import orjson
import structlog
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine import logging as elog
from engine.config import EngineConfig, RabbitBusConfig, json_schema, load_config
from engine.errors import ConfigError, EnjournalError, PermanentError, TransientError
from engine.redact import safe_reason
from engine.sniff import sniff_mapping

if TYPE_CHECKING:
    from engine.coverage import Coverage
    from engine.journal_view import JournalView
    from engine.model import MapContext, MappingResult
    from engine.runtime import Runtime
    from engine.store import Store

#: no locals in a traceback: they may hold a message's bytes
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="enjournal: one journal per citizen.",
    pretty_exceptions_show_locals=False,
)
config_app = typer.Typer(no_args_is_help=True, help="Configuration helpers.")
app.add_typer(config_app, name="config")
audit_app = typer.Typer(help="The audit log of reads: query it, verify its hash chain.")
app.add_typer(audit_app, name="audit")
out = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True)
log = structlog.get_logger("engine.cli")
T = TypeVar("T")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="ENJOURNAL_CONFIG",
        help="YAML config file (default: enjournal.yaml in the current directory)",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json")]
DEFAULT_CONFIG = Path("enjournal.yaml")
NO_CONFIG = (
    "no config: pass -c FILE, set ENJOURNAL_CONFIG, or run where an enjournal.yaml is "
    "(`enjournal demo` runs the demo without one)"
)


def _reason(text: str) -> str:
    """A reason text as the CLI prints it: through safe_reason, with rich's markup escaped."""
    return escape(safe_reason(text))


def _load(path: Path | None) -> EngineConfig:
    """The validated config; exit 2 when there is none (nothing is created in the current directory)."""
    if path is None:
        if not DEFAULT_CONFIG.is_file():
            err.print(f"[red]config error[/red]\n{NO_CONFIG}", highlight=False)
            raise typer.Exit(2)
        path = DEFAULT_CONFIG
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        err.print(f"[red]config error[/red]\n{escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    elog.configure(cfg.log.level, cfg.log.format)
    return cfg


def _config_error(exc: ConfigError) -> NoReturn:
    err.print(f"[red]config error[/red]\n{_reason(str(exc))}", highlight=False)
    raise typer.Exit(2) from None


def _secrets(cfg: EngineConfig) -> None:
    """Exit 2 now when a URL needs a password the environment does not give (not deep in a client
    library's connect, as a traceback)."""
    try:
        cfg.store.url_with_secret()
        if isinstance(cfg.bus, RabbitBusConfig):
            cfg.bus.url_with_secret()
    except ConfigError as exc:
        _config_error(exc)


def _runtime(cfg: EngineConfig, declare: bool = True) -> Runtime:
    from engine.runtime import Runtime

    _secrets(cfg)
    try:
        return Runtime.build(cfg, declare=declare)
    except ConfigError as exc:
        _config_error(exc)
    except EnjournalError as exc:
        err.print(f"[red]{_reason(exc.reason)}[/red]", highlight=False)
        raise typer.Exit(3) from None


@app.command()
def run(
    config: ConfigOpt = None,
    until_idle: Annotated[bool, typer.Option(help="exit once the queue is empty")] = False,
    adapters: Annotated[list[str] | None, typer.Option("--adapter", help="run only these adapters")] = None,
    no_workers: Annotated[bool, typer.Option(help="adapters only (an intake process)")] = False,
    no_adapters: Annotated[bool, typer.Option(help="workers only (a worker process)")] = False,
    drain_seconds: Annotated[float, typer.Option(help="shutdown deadline")] = 30.0,
) -> None:
    """Run adapters and workers until SIGTERM/SIGINT (drains, then exits 0)."""
    from engine.runtime import install_signal_handlers

    cfg = _load(config)
    rt = _runtime(cfg)
    requested = threading.Event()
    install_signal_handlers(requested)
    rt.start(adapters=[] if no_adapters else adapters, with_workers=not no_workers)
    log.info("engine.started", adapters=len(adapters or cfg.adapters), workers=cfg.workers.count)
    if until_idle:
        _wait_idle(rt, requested)
    else:
        requested.wait()
    ok = rt.shutdown(drain_seconds)
    # not clean: a service crashed while the engine ran (restarted or not), or did not stop in time
    log.info("engine.stopped", clean=ok, crashes=rt.crashes)
    raise typer.Exit(0 if ok else 1)


def _wait_idle(rt: Runtime, requested: threading.Event, settle: float = 1.5) -> None:
    quiet_since: float | None = None
    while not requested.wait(0.25):
        # the queue depth does not count what a worker has prefetched: also wait for the workers to go quiet,
        # and for a crashed service to be back (what it held returns to the queue)
        recent = any(time.monotonic() - w.last_active < settle for w in rt.workers)
        restarting = "restarting" in rt.health().services.values()
        pending = _pending_files(rt) + rt.bus.depth().get("work", 0)
        if pending or recent or restarting:
            quiet_since = None
            continue
        quiet_since = quiet_since or time.monotonic()
        if time.monotonic() - quiet_since >= settle:
            return


def _pending_files(rt: Runtime) -> int:
    """Files still in the file adapters' inboxes."""
    from engine.plugin import InboxSettings

    n = 0
    for settings in rt.config.adapters.values():
        if isinstance(settings, InboxSettings) and settings.directory.is_dir():
            n += sum(
                1
                for p in settings.directory.glob(settings.pattern)
                if p.is_file() and not p.name.startswith(".") and not p.name.endswith((".reason", ".tmp"))
            )
    return n


@app.command()
def check(config: ConfigOpt = None) -> None:
    """Validate the config, reach the bus and the store, and check every adapter's source; writes nothing.
    Exit 0 all usable, 2 the config is invalid or the bus or the store cannot be reached, 1 an adapter's source."""
    from engine.check import exit_status, run_checks

    cfg = _load(config)
    _secrets(cfg)
    findings = run_checks(cfg)
    for f in findings:
        label = f"adapter {f.name}" if f.part == "adapter" else f.name
        detail = escape(f.detail) if f.ok else f"[red]{_reason(f.detail)}[/red]"
        out.print(f"{label}: {detail}", highlight=False)
    raise typer.Exit(exit_status(findings))


@app.command("map")
def map_file(
    file: Path,
    as_json: JsonOpt = False,
    mapping: Annotated[str | None, typer.Option(help="mapping name (default: sniffed)")] = None,
    adapter: Annotated[str | None, typer.Option(help="adapter whose mapping options to use (CSV)")] = None,
    config: ConfigOpt = None,
    coverage: Annotated[
        bool, typer.Option("--coverage", help="also show which source leaves the result represents (paths only)")
    ] = False,
) -> None:
    """Show what a message would become, writing nothing. Exit 0 mapped, 1 rejected (with the reason code)."""
    from engine.envelope import Envelope
    from engine.worker import Mapper

    elog.configure("warning")
    try:
        raw = file.read_bytes()
    except OSError as exc:
        err.print(f"REJECTED READ_ERROR: {exc.strerror}", markup=False)
        raise typer.Exit(1) from None
    options: dict[str, Any] = {}
    name = mapping or sniff_mapping(raw)
    if adapter:
        cfg = _load(config)
        settings = cfg.adapters.get(adapter)
        if settings is None:
            err.print(f"unknown adapter {adapter!r}", markup=False)
            raise typer.Exit(2)
        options = settings.mapping_options()
        name = mapping or settings.mapping
    env = Envelope.build(raw, adapter=adapter or "cli", mapping=name, content_type="application/octet-stream")
    outcome = Mapper(lambda _a: options)(env)
    cover = _coverage(env.raw, env.context(options), env.mapping, outcome.result) if coverage else None
    if outcome.dead:  # the Mapper's reason went through safe_reason already
        if as_json:
            out.print_json(
                json.dumps({"status": "rejected", "code": outcome.reason_code, "reason": outcome.reason or ""})
            )
        else:
            err.print(f"REJECTED {escape(outcome.reason or '')}", highlight=False)
        raise typer.Exit(1)
    res = outcome.result
    assert res is not None
    doc: dict[str, Any] = {
        "status": "mapped",
        "message_type": res.message_type,
        "source_message_id": res.source_message_id,
        "warnings": list(res.warnings),
        "records": [r.model_dump(mode="json") for r in res.records],
        "links": [link.model_dump(mode="json") for link in res.links],
    }
    if cover is not None:
        doc["coverage"] = cover.model_dump(mode="json")
    if as_json:
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        t = Table(title=f"{file.name}: {res.message_type or ''} -> {len(res.records)} records")
        for col in ("kind", "key", "status", "event time"):
            t.add_column(col)
        for r in res.records:
            t.add_row(r.kind, r.key, r.status.value, r.event_time.isoformat())
        out.print(t)
        for w in res.warnings:
            out.print(f"warning: {w}")
        if cover is not None:
            print_coverage(cover)


def _coverage(raw: bytes, ctx: MapContext, mapping: str, result: MappingResult | None) -> Coverage | None:
    """The coverage of a mapped message, or None (with a note) when its mapping declares none."""
    from engine.coverage import measure

    if result is None:
        return None
    try:
        return measure(raw, ctx, mapping, result)
    except PermanentError as exc:
        err.print(f"no coverage: {exc.code}", markup=False)
        return None


def print_coverage(cover: Coverage) -> None:
    """Share, counts and the unmapped and ignored paths of a :class:`engine.coverage.Coverage` (no values)."""
    out.print(
        f"coverage {cover.share * 100:.1f} %: {cover.leaves} leaves, {cover.represented} represented, "
        f"{cover.ignored_leaves} ignored, {cover.unmapped_leaves} unmapped",
        highlight=False,
    )
    for p in cover.unmapped:
        out.print(f"  unmapped {p.count:>4}  {escape(p.path)}", highlight=False)
    for i in cover.ignored:
        out.print(f"  ignored  {i.count:>4}  {escape(i.path)}  ({escape(i.reason)})", highlight=False)


@app.command()
def journal(
    identifier: str,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    history: Annotated[bool, typer.Option(help="include superseded versions")] = False,
) -> None:
    """A citizen's unified journal (by any of their identifiers)."""
    from engine.journal_view import load_journal

    def read(rt: Runtime) -> JournalView | None:
        view = load_journal(rt.store, identifier)
        _audit_journal_read(rt, view, identifier, history)
        return view

    view = _audited(config, read)
    if view is None:
        err.print("no citizen with that identifier")
        raise typer.Exit(1)
    if as_json:
        sys.stdout.write(orjson.dumps(view.to_json(history), option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    print_journal(view)


def _audited(config: Path | None, read: Callable[[Runtime], T]) -> T:
    """What ``read`` (which writes its audit entry) returns from the config's store; exit 1 on an ambiguous
    identifier, 3 when the audit log cannot be written (then nothing is given out)."""
    cfg = _load(config)
    rt = _runtime(cfg, declare=False)
    try:
        return read(rt)
    except EnjournalError as exc:
        err.print(_reason(exc.reason), highlight=False)
        raise typer.Exit(3 if isinstance(exc, TransientError) else 1) from None
    finally:
        rt.close()


def _audit_local(
    rt: Runtime, found: bool, citizen_key: str | None, resource: str, ids: Sequence[str], query: str
) -> None:
    """Record the CLI's read in the audit log (actor: the OS user) before anything is printed."""
    from engine.audit import AuditEntry, AuditLog
    from engine.auth.tokens import os_user

    AuditLog(rt.store).append(
        AuditEntry(
            actor=f"os:{os_user()}",
            role="local",
            outcome="allowed",
            reason_code="ALLOWED_LOCAL" if found else "NOT_FOUND",
            citizen_key=citizen_key,
            resource_type=resource,
            resource_ids=tuple(ids),
            query=query,
            client="cli",
        )
    )


def _audit_journal_read(rt: Runtime, view: JournalView | None, identifier: str, history: bool) -> None:
    records = [*view.current, *(view.history if history else ())] if view is not None else []
    citizen = view.citizen.component if view is not None else identifier.strip()
    ids = list(dict.fromkeys(str(r["record_key"]) for r in records))
    query = f"enjournal journal {identifier}{' --history' if history else ''}"
    _audit_local(rt, view is not None, citizen, "Journal", ids, query)


@app.command()
def attachment(
    sha256: str,
    config: ConfigOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write the bytes here (default: stdout)")
    ] = None,
) -> None:
    """Write the bytes of a stored attachment (by the sha256 ``journal`` shows) to stdout or FILE; its type and
    size go to stderr. The operator's own access, with the engine's store credentials, audited like ``journal``.
    Exit 0 written, 1 not in the store, 2 not a sha256 or binary output to a terminal."""
    digest = sha256.strip().lower()
    if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        err.print("not a sha256 (64 hex digits)")
        raise typer.Exit(2)
    if output is None and sys.stdout.isatty():
        err.print("the bytes are binary: pass -o FILE or redirect stdout")
        raise typer.Exit(2)

    def read(rt: Runtime) -> tuple[str, bytes] | None:
        found = rt.store.attachment(digest)
        _audit_attachment_read(rt, digest, found is not None)
        return found

    found = _audited(config, read)
    if found is None:
        err.print("no attachment with that sha256 in the store")
        raise typer.Exit(1)
    content_type, data = found
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(data)
    err.print(f"{content_type} {len(data)} bytes", markup=False, highlight=False)


def _audit_attachment_read(rt: Runtime, digest: str, found: bool) -> None:
    """The citizen is the one of the record that first brought the attachment."""
    subject = rt.store.attachment_subject(digest) if found else None
    citizen = rt.store.citizen(subject) if subject else None
    key = citizen.component if citizen is not None else subject
    _audit_local(rt, found, key, "Binary", [digest], f"enjournal attachment {digest}")


def print_journal(view: JournalView) -> None:
    from engine.journal_view import summary_line

    data = view.to_json()
    best = data["best_identifier"]
    out.print(
        f"[bold]Citizen[/bold] {best['kind']} {best['value']}  "
        f"({len(data['identifiers'])} identifiers, {len(data['records'])} records)"
    )
    for i in data["identifiers"]:
        out.print(f"  - {i['kind']:5} {i['system']} {i['value']}", highlight=False)
    if data["conflicts"]:
        out.print(f"[red]CONFLICT: {len(data['conflicts'])} pair(s) of different FNRs in one component; review[/red]")
    t = Table(show_lines=False)
    for col in ("when", "kind", "status", "what", "from"):
        t.add_column(col)
    from datetime import datetime
    from zoneinfo import ZoneInfo

    oslo = ZoneInfo("Europe/Oslo")
    for r in data["records"]:
        when = datetime.fromisoformat(r["event_time"]).astimezone(oslo).strftime("%Y-%m-%d %H:%M")
        t.add_row(when, r["kind"], r["status"], escape(summary_line(r)), r["adapter"])  # text, not markup
    out.print(t)


@app.command()
def status(
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    counts: Annotated[
        bool,
        typer.Option(
            "--counts",
            help="also count received envelopes per adapter and records per kind (scans the journal's largest tables)",
        ),
    ] = False,
) -> None:
    """Queue depth, open dead letters per adapter, identity conflicts; ``--counts`` adds the heavy counts."""
    from engine.status import broker_figures

    cfg = _load(config)
    rt = _runtime(cfg, declare=False)
    try:
        figures: dict[str, Any] = rt.store.counts(heavy=counts)
        figures["queue"] = broker_figures(rt.bus)
    finally:
        rt.close()
    if as_json:
        out.print_json(json.dumps(figures))
        return
    t = Table(title="adapters")
    received = figures.get("received")
    for col in ("adapter", *(("received",) if received is not None else ()), "dead letters"):
        t.add_column(col)
    for name in sorted(set(received or {}) | set(figures["dead_letters"]) | set(cfg.adapters)):
        dead = str(figures["dead_letters"].get(name, 0))
        t.add_row(name, *((str(received.get(name, 0)),) if received is not None else ()), dead)
    out.print(t)
    records = f"records: {figures['records']}  " if "records" in figures else ""
    out.print(f"{records}identity conflicts: {figures['conflicts']}  queue: {figures['queue']}", markup=False)


@app.command("dead-letters")
def dead_letters(
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many (newest first)")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List dead letters (envelope id, adapter, reason code, reason)."""
    cfg = _load(config)
    rt = _runtime(cfg, declare=False)
    try:
        rows = [{**r, "reason": safe_reason(r["reason"])} for r in rt.store.dead_letters(limit)]
    finally:
        rt.close()
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    t = Table(title=f"dead letters ({len(rows)})")
    for col in ("envelope", "adapter", "code", "reason", "at"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["envelope_id"], r["adapter"], r["reason_code"], escape(r["reason"]), r["dead_at"][:19])
    out.print(t)


@app.command()
def replay(envelope_ids: list[str], config: ConfigOpt = None) -> None:
    """Publish archived envelopes again (same path as live traffic), e.g. after a mapping fix."""
    cfg = _load(config)
    rt = _runtime(cfg)
    try:
        envs = []
        for eid in envelope_ids:
            env = rt.store.archived(eid)
            if env is None:
                err.print(f"{eid}: not in the archive", markup=False)
                raise typer.Exit(1)
            replayed = {"attributes": env.attributes | {"replay": "1"}, "rejection": None}  # a replay is mapped
            envs.append(env.model_copy(update=replayed))
        rt.bus.publish(envs)
        out.print(f"replayed {len(envs)} envelope(s)")
    finally:
        rt.close()


@app.command("import")
def import_cmd(adapter: str, file: Path, config: ConfigOpt = None) -> None:
    """One-off import of FILE through ADAPTER (CSV), with a progress bar and a summary."""
    from adapters.csv import Settings as CsvSettings
    from adapters.csv.progress import rich_import

    cfg = _load(config)
    settings = cfg.adapters.get(adapter)
    if settings is None:
        err.print(f"unknown adapter {adapter!r}", markup=False)
        raise typer.Exit(2)
    if not isinstance(settings, CsvSettings):
        err.print(f"adapter {adapter!r} is not a csv adapter", markup=False)
        raise typer.Exit(2)
    rt = _runtime(cfg)
    try:
        summary = rich_import(adapter, settings, rt, file, console=out)
    except PermanentError as exc:
        err.print(f"[red]{_reason(exc.reason)}[/red]", highlight=False)
        raise typer.Exit(1) from None
    finally:
        rt.close()
    raise typer.Exit(0 if summary.rejected == 0 else 1)


@app.command()
def token(
    role: Annotated[str, typer.Option(help="clinician, citizen, ops or auditor")],
    config: ConfigOpt = None,
    hpr: Annotated[str | None, typer.Option(help="a clinician's HPR number")] = None,
    purpose: Annotated[str | None, typer.Option(help="a clinician's purpose of use (TREAT, ETREAT ...)")] = None,
    pid: Annotated[str | None, typer.Option(help="a citizen's national id")] = None,
    sub: Annotated[str | None, typer.Option(help="the subject (default: the OS user for ops and auditor)")] = None,
    ttl: Annotated[int | None, typer.Option(min=60, help="seconds the token is valid (default: auth.local)")] = None,
) -> None:
    """Print a token signed with the local key (auth.mode local only), for `enjournal serve` and curl."""
    from engine.auth.errors import TokenRequestError
    from engine.auth.keys import state_dir
    from engine.auth.tokens import issue

    cfg = _load(config)
    try:
        signed = issue(cfg.auth, role, state_dir=state_dir(cfg), hpr=hpr, purpose=purpose, pid=pid, sub=sub, ttl=ttl)
    except TokenRequestError as exc:
        err.print(f"[red]{_reason(exc.reason)}[/red]", highlight=False)
        raise typer.Exit(2) from None
    sys.stdout.write(signed + "\n")


@audit_app.callback(invoke_without_command=True)
def audit(
    ctx: typer.Context,
    config: ConfigOpt = None,
    citizen: Annotated[str | None, typer.Option(help="a citizen's identifier (value or system|value)")] = None,
    actor: Annotated[str | None, typer.Option(help="an actor id (hpr:..., pid:..., ops:..., os:...)")] = None,
    since: Annotated[datetime | None, typer.Option(help="from this time, UTC (YYYY-MM-DD[THH:MM:SS])")] = None,
    until: Annotated[datetime | None, typer.Option(help="before this time, UTC")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Who read what: the audit log by citizen and/or actor (oldest first); `audit verify` checks its chain."""
    if ctx.invoked_subcommand is not None:
        return
    if citizen is None and actor is None:
        err.print("give --citizen or --actor (or `enjournal audit verify`)")
        raise typer.Exit(2)
    from engine.audit import AuditLog, citizen_keys

    store = _store(_load(config))
    try:
        keys = citizen_keys(store, citizen) if citizen is not None else None
        rows = AuditLog(store).query(citizen=keys, actor=actor, since=_utc(since), until=_utc(until), limit=limit)
    except EnjournalError as exc:
        err.print(_reason(exc.reason), highlight=False)
        raise typer.Exit(1) from None
    finally:
        store.close()
    if as_json:
        docs = [r.model_dump(mode="json") for r in rows]
        sys.stdout.write(orjson.dumps(docs, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    t = Table(title=f"audit log ({len(rows)})")
    for col in ("id", "at", "actor", "role", "purpose", "outcome", "type", "records", "client", "break glass"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            str(r.id),
            r.at.isoformat(timespec="seconds"),
            escape(r.actor),
            r.role,
            escape(r.purpose or ""),
            f"{r.outcome} {r.reason_code}",
            escape(r.resource_type or ""),
            str(len(r.resource_ids)),
            escape(r.client or ""),
            escape(r.break_glass or ""),
        )
    out.print(t)


@audit_app.command("verify")
def audit_verify(config: ConfigOpt = None) -> None:
    """Check the audit log's hash chain: exit 0 when it holds, 1 naming the first broken row."""
    from engine.audit import AuditLog

    store = _store(_load(config))
    try:
        log = AuditLog(store)
        broken = log.check()
        rows, head = log.head()
    finally:
        store.close()
    if broken is None:
        out.print(f"audit log: the chain holds ({rows} rows, head {head})", highlight=False)
        return
    what = {
        "hash": "its content was changed",
        "link": "the row before it was changed",
        "id": "rows before it are missing",
    }
    err.print(f"[red]audit log broken at row {broken.id}: {what[broken.why]} ({broken.why})[/red]", highlight=False)
    raise typer.Exit(1)


def _store(cfg: EngineConfig) -> Store:
    """The journal store alone (no bus): the audit commands need nothing else."""
    from engine.store import Store

    _secrets(cfg)
    try:
        return Store(cfg.store.url_with_secret(), pool_size=2)
    except EnjournalError as exc:
        err.print(f"[red]{_reason(exc.reason)}[/red]", highlight=False)
        raise typer.Exit(3) from None


def _utc(when: datetime | None) -> datetime | None:
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


@config_app.command("schema")
def config_schema() -> None:
    """Print the config's JSON Schema (for editor completion)."""
    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8080,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the journal as a FHIR R4 API (``/fhir``)."""
    from engine.api.serve import serve as run_api

    cfg = _load(config)
    try:
        run_api(config or DEFAULT_CONFIG, cfg, host, port, workers)
    except ConfigError as exc:
        err.print(f"[red]config error[/red]\n{escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def demo() -> None:
    """Ingest the sample files in deploy/demo/ on the embedded default (under var/demo) and print one journal."""
    from engine.demo import run_demo

    elog.configure("warning")
    view = run_demo()
    print_journal(view)


if __name__ == "__main__":  # pragma: no cover
    app()
