"""Materialize assets through Dagster from the shell (demo, backfills), on the instance at ``$DAGSTER_HOME``.

Each call is one Dagster run, so the UI shows it with its logs, metadata and
check results exactly as if it had been launched there. A failed run never
raises here: it comes back as a ``RunOutcome`` naming the partition and the
first line of its error, so the command can go on, report it and exit non-zero.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dagster import DagsterInstance, Definitions, ExecuteInProcessResult, materialize

from tier_assets.cli import UserError
from tier_assets.curation.sources import read_manifest
from tier_assets.curation.stats import run_sql
from tier_assets.curation.storage import TierStore
from tier_assets.definitions import build_definitions
from tier_assets.defs.registry import (
    BATCH_PARTITIONS_NAME,
    MODEL_ASSETS,
    asset_of,
    partition_key,
    tier_chain,
    tier_of,
)

if TYPE_CHECKING:
    from dagster._utils.error import SerializableErrorInfo

DOMAIN_ORDER = ("en", "zh", "math", "code")


@dataclass(frozen=True)
class RunOutcome:
    """One Dagster run: what it materialized, for which partition, and the first line of its error if it failed."""

    assets: tuple[str, ...]
    partition: str | None
    run_id: str
    seconds: float
    counts: str = ""  # e.g. "l0_raw 14 kept / 0 quarantined"
    records: int = 0  # records the run handled, for the rate
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __bool__(self) -> bool:  # `assert run_assets(...)` reads as "the run succeeded"
        return self.ok

    @property
    def label(self) -> str:
        return f"{'+'.join(self.assets)}" + (f" [{self.partition}]" if self.partition else "")


def _root_cause(error: SerializableErrorInfo) -> SerializableErrorInfo:
    """The innermost error: Dagster wraps user exceptions in 'Error occurred while executing op ...'."""
    while error.cause is not None:
        error = error.cause
    return error


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "unknown error")


def failure_line(result: ExecuteInProcessResult) -> str | None:
    """The first line of what made the run fail (from its first step failure event), or None if it succeeded."""
    if result.success:
        return None
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        return f"step {event.step_key}: {_first_line(_root_cause(error).message if error else event.message or '')}"
    failure = result.get_run_failure_event()
    error = failure.event_specific_data.error if failure.event_specific_data else None
    return _first_line(_root_cause(error).message if error else failure.message or "")


COUNT_KEYS = (("records_kept", "kept"), ("records_quarantined", "quarantined"), ("records_rejected", "rejected"),
              ("seeds_in", "seeds"), ("seeds_scored", "scored"), ("items", "items"))


def _counts(result: ExecuteInProcessResult) -> tuple[str, int]:
    """'asset n kept / m rejected; ...' from the run's materialization metadata, and the records it handled."""
    parts, records = [], 0
    for event in result.get_asset_materialization_events():
        meta = event.materialization.metadata
        found = [(label, int(meta[key].value)) for key, label in COUNT_KEYS if key in meta]
        if not found:
            continue
        parts.append(f"{event.asset_key.to_user_string()} " + " / ".join(f"{n} {label}" for label, n in found))
        if not records:  # the first asset's input: everything downstream came out of it
            records = sum(n for label, n in found if label in ("kept", "quarantined", "rejected", "seeds", "items"))
    return "; ".join(parts), records


def run_assets(defs: Definitions, instance: DagsterInstance, keys: list[str], partition: Any = None,
               config: dict[str, str] | None = None, raise_on_error: bool = True) -> RunOutcome:
    """Materialize the assets ``keys`` (one partitions definition) in one run; ``config``: asset -> overrides YAML."""
    assets = list(defs.assets or [])
    run_config = {"ops": {k: {"config": {"overrides_yaml": v}} for k, v in (config or {}).items() if k in keys}}
    start = time.perf_counter()
    result = materialize(assets, instance=instance, partition_key=partition, resources=defs.resources,
                         selection=keys, run_config=run_config, raise_on_error=raise_on_error)
    counts, records = _counts(result)
    return RunOutcome(tuple(keys), partition, result.run_id, time.perf_counter() - start, counts, records,
                      failure_line(result))


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """One line per run on the console: step n/N, what it made, the rate and an ETA from the mean run time so far."""

    def __init__(self, total: int, console: TextIO, prefix: str):
        self.total, self.console, self.prefix = total, console, prefix
        self.done = 0
        self.start = time.perf_counter()
        self.outcomes: list[RunOutcome] = []

    def record(self, outcome: RunOutcome) -> None:
        self.done += 1
        self.outcomes.append(outcome)
        elapsed = time.perf_counter() - self.start
        left = self.total - self.done
        eta = f"ETA {_duration(elapsed / self.done * left)}" if left else "done"
        rate = f", {outcome.records / max(outcome.seconds, 1e-9):.3g} docs/s" if outcome.records else ""
        what = (outcome.counts or "ok") if outcome.ok else f"FAILED: {outcome.error}"
        self.say(f"[{self.prefix} {self.done}/{self.total}] {outcome.label}: {what} "
                 f"({_duration(outcome.seconds)}{rate}; {eta})")

    def skip(self, keys: list[str], partition: str | None, reason: str) -> None:
        """A run that is not launched (its input failed) leaves the count, so the ETA stays honest."""
        self.total -= 1
        where = f" [{partition}]" if partition else ""
        self.say(f"[{self.prefix}] {'+'.join(keys)}{where}: skipped ({reason})")

    def say(self, line: str) -> None:
        print(line, file=self.console, flush=True)

    @property
    def failures(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if not o.ok]


def log_path(store: TierStore, command: str) -> Path:
    """A fresh log file for one command under ``{data_root}/logs/``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = store.root / "logs" / f"{command}-{stamp}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def console_output(log: Path | None) -> Iterator[TextIO]:
    """Yield the console for progress lines; with ``log``, everything else printed meanwhile goes to that file.

    Dagster's in-process runs log every event through its console logger (a
    handler that writes to ``sys.stderr`` when it emits), and model loading
    draws progress bars: redirecting ``sys.stdout``/``sys.stderr`` sends all of
    it to the log file, while the run's events are still stored in the instance
    for the UI. Without ``log`` (``--verbose``) nothing is redirected.
    """
    console = sys.stdout
    if log is None:
        yield console
        return
    with open(log, "a", encoding="utf-8", buffering=1) as sink, \
            contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield console


def tier_table(store: TierStore, batches: list[str]) -> list[dict[str, Any]]:
    """Per tier x domain over ``batches``: records kept, rejected, and estimated tokens kept (sql/tier_summary.sql)."""
    tokens: dict[tuple[str, str], int] = {}
    for row in run_sql(store, "tier_summary"):
        if row["batch"] in batches:
            key = (row["tier"], row["domain"])
            tokens[key] = tokens.get(key, 0) + int(row["est_tokens"] or 0)
    rows = []
    for tier in store.tiers_present():
        for domain in DOMAIN_ORDER:
            refs = [r for r in store.partitions(tier) if r.domain == domain and r.batch in batches]
            if refs:
                rows.append({"tier": tier, "domain": domain, "kept": sum(store.count(r) for r in refs),
                             "rejected": sum(store.count(r, "rejected") for r in refs),
                             "tokens": tokens.get((tier, domain), 0)})
    return rows


def print_table(rows: list[dict[str, Any]], console: TextIO) -> None:
    """Rows as aligned columns (the terminal counterpart of the Markdown tables in the UI)."""
    if not rows:
        print("(no tier data)", file=console)
        return
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(f"{r[c]:,}" if isinstance(r[c], int) else str(r[c])) for r in rows)) for c in cols}
    cell = lambda c, v: (f"{v:,}".rjust if isinstance(v, int) else str(v).ljust)(widths[c])  # noqa: E731
    print("  ".join(c.ljust(widths[c]) for c in cols), file=console)
    for r in rows:
        print("  ".join(cell(c, r[c]) for c in cols), file=console)


@dataclass
class BackfillPlan:
    """The runs a backfill will launch: (partition, what it needs) in key order."""

    asset: str
    partitions: list[str]
    batches: list[str]


def plan_backfill(store: TierStore, instance: DagsterInstance, asset_key: str, domains: list[str] | None,
                  batches: list[str] | None, stale_only: bool) -> BackfillPlan:
    """Which partitions of ``asset_key`` to run; unknown assets or batches and an empty instance are user errors."""
    from tier_assets.curation.staleness import VERSIONED, stale_partitions

    known_assets = [*tier_chain(), *MODEL_ASSETS]
    if asset_key not in known_assets:
        raise UserError(f"unknown asset {asset_key!r}; known: {', '.join(known_assets)}")
    keys = sorted(instance.get_dynamic_partitions(BATCH_PARTITIONS_NAME))
    if asset_key in MODEL_ASSETS:  # partitioned by domain only
        if stale_only:
            raise UserError(f"--stale: {asset_key} is partitioned by domain only; it has no stale partitions")
        return BackfillPlan(asset_key, [d for d in DOMAIN_ORDER if not domains or d in domains], keys)
    if not keys:
        raise UserError(f"no batch partitions on the Dagster instance at {instance.root_directory}: "
                        "register one with `tier-assets add-batch NAME` or run `tier-assets demo`")
    if batches and set(batches) - set(keys):
        raise UserError(f"unknown batch(es) {', '.join(sorted(set(batches) - set(keys)))}; known: {', '.join(keys)}")
    wanted = [(d, b) for b in keys for d in DOMAIN_ORDER
              if (not domains or d in domains) and (not batches or b in batches)]
    if stale_only:
        tier = tier_of(asset_key)
        if tier not in VERSIONED:
            raise UserError(f"--stale: {asset_key} is not versioned; versioned: "
                            f"{', '.join(asset_of(t) for t in VERSIONED)}")
        stale = {(s.domain, s.batch) for s in stale_partitions(store, [tier])}
        wanted = [p for p in wanted if p in stale]
    manifests = {}
    for b in sorted({b for _, b in wanted}):
        try:
            manifests[b] = read_manifest(store.root, b)
        except FileNotFoundError as exc:  # the instance and the data root disagree: the wrong --data-root
            raise UserError(f"{exc}: the Dagster instance at {instance.root_directory} knows batch {b!r}, but "
                            f"the data root {store.uri} does not; give the --data-root it was added under, "
                            f"or `tier-assets add-batch {b}` there") from exc
    wanted = [(d, b) for d, b in wanted if manifests[b].for_domain(d)]
    return BackfillPlan(asset_key, [partition_key(d, b) for d, b in wanted], sorted({b for _, b in wanted}))


def backfill(data_root: str | None, asset_key: str, domains: list[str] | None = None,
             batches: list[str] | None = None, stale_only: bool = False, verbose: bool = False) -> list[RunOutcome]:
    """Materialize ``asset_key`` for every matching partition, one Dagster run each, in key order."""
    store = TierStore(data_root)
    instance = DagsterInstance.get()
    # planned before the log file exists: a usage error must leave nothing behind under the data root
    plan = plan_backfill(store, instance, asset_key, domains, batches, stale_only)
    log = None if verbose else log_path(store, "backfill")
    with console_output(log) as console:
        defs = build_definitions(store.uri)
        progress = Progress(len(plan.partitions), console, "backfill")
        if not plan.partitions:
            progress.say(f"[backfill] {asset_key}: nothing to run")
        for partition in plan.partitions:
            progress.record(run_assets(defs, instance, [asset_key], partition, raise_on_error=False))
    print_summary(store, plan.batches, progress, log, instance.root_directory)
    return progress.outcomes


def print_summary(store: TierStore, batches: list[str], progress: Progress, log: Path | None,
                  instance_dir: str) -> None:
    """The tiers x domains table, every failure, where the full logs are and what to open next."""
    console = progress.console
    print(f"\ntiers x domains over batch(es) {', '.join(batches) or '-'} (tokens: estimated, kept records):",
          file=console)
    print_table(tier_table(store, batches), console)
    where = f"{log}" if log else "above (--verbose)"
    print(f"\nfull logs: {where}; every run is also in the Dagster instance at {instance_dir}", file=console)
    if not progress.failures:  # the hints are for a run that worked; after a failure the FAILED lines say what to fix
        print("next: `make ui` (runs, logs, lineage on http://127.0.0.1:3000), `tier-assets report`, "
              '`tier-assets stats`, `tier-assets ask "QUESTION"`', file=console)
    for outcome in progress.failures:
        print(f"FAILED {outcome.label}: {outcome.error} (run {outcome.run_id})", file=sys.stderr)
