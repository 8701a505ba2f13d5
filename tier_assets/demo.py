"""`tier-assets demo`: register the bundled corpus as a batch and materialize it tier by tier.

Runs go through Dagster on the instance at ``$DAGSTER_HOME``, so `make ui` shows
the materializations, their metadata, check results and lineage afterwards. The
LLM tiers run with CPU-sized settings (``DEMO_CONFIG``): a few seeds per domain
for the L2 classifier, small token budgets for L3 and L4. The console gets one
line per run and a tiers x domains table; Dagster's event logs go to a file under
``{data_root}/logs/`` unless ``verbose``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml
from dagster import AssetKey, DagsterInstance, Definitions

from tier_assets.cli import UserError
from tier_assets.curation.schema import DOMAINS
from tier_assets.curation.sources import (
    BatchManifest,
    load_registry,
    manifest_path,
    now_iso,
    read_manifest,
    registry_entries,
    write_manifest,
)
from tier_assets.curation.storage import TierStore
from tier_assets.definitions import build_definitions
from tier_assets.defs.registry import BATCH_PARTITIONS_NAME, partition_key, partition_key_string
from tier_assets.runner import Progress, RunOutcome, console_output, log_path, print_summary, run_assets

DEMO_BATCH = "demo-0001"
# asset -> launchpad overrides (YAML) for a CPU demo of a few minutes
DEMO_CONFIG = {
    "l2_classifier": "seeds: 12\nmax_references: 6\nmax_chars: 600",
    "l3_refined": "budget_tokens: 6000\nmax_new_tokens: 160\nmax_source_chars: 500\nmax_docs: 2",
    "l4_organized": "budget_tokens: 1200\nmax_new_tokens: 64\nmax_llm_docs: 1",
}
# per domain, assets whose overrides replace DEMO_CONFIG's: the embedded model finishes a math knowledge point
# or solution only with room to write (max_new_tokens 160 truncates it), and about one math output in six
# passes verification, so math gets a dozen outputs (bench/math_l3.py)
DOMAIN_DEMO_CONFIG = {
    "math": {"l3_refined": "budget_tokens: 12000\nmax_new_tokens: 384\nmax_source_chars: 600"},
}
# the runs of one domain, in order; each needs the one before it
DOMAIN_STEPS = (("l0_raw", "l1_filtered"), ("l2_classifier",), ("l2_selected", "l3_refined", "l4_organized"))
FINAL_STEPS = (("l4_index",), ("tier_stats",))
# `--through TIER`: the runs of one domain up to that tier (a quick check, e.g. of an engine); the final runs need L4
STEPS_THROUGH = {"L1": DOMAIN_STEPS[:1], "L2": (*DOMAIN_STEPS[:2], ("l2_selected",)), "L4": DOMAIN_STEPS}


def ensure_batch(root: Path, batch: str, registry: str | None, instance: DagsterInstance) -> list[str]:
    """Write the batch manifest from the registry (once) and add the batch partition; returns its domains.

    A batch never changes once it holds data. An explicit ``registry`` naming other sources than an
    existing batch re-registers it while no L0 partition of it was materialized (the fix for a batch
    whose L0 failed on a bad source); after that it is refused, naming the way out.
    """
    path = manifest_path(root, batch)
    if registry is not None or not path.exists():
        try:
            wanted = registry_entries(load_registry(registry))
        except (OSError, ValueError, yaml.YAMLError) as exc:  # a missing, unreadable or malformed registry/source
            raise UserError(f"cannot register batch {batch!r} from the source registry: {exc}") from exc
        registered = read_manifest(root, batch).entries if path.exists() else None
        if registered != wanted:
            if registered is not None:
                made = sorted(materialized_l0(instance, batch))
                if made:
                    raise UserError(f"batch {batch!r} is already registered ({path}) with other sources and L0 "
                                    f"holds its {', '.join(made)} data: a batch never changes once it holds data; "
                                    f"register the new sources as a new batch (--batch NAME)")
                print(f"batch {batch!r} had no L0 data yet: registered again from {registry}", file=sys.stderr)
            write_manifest(root, BatchManifest(batch, now_iso(), wanted))
    if not instance.has_dynamic_partition(BATCH_PARTITIONS_NAME, batch):
        instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, [batch])
    return read_manifest(root, batch).domains


def materialized_l0(instance: DagsterInstance, batch: str) -> set[str]:
    """The domains of ``batch`` whose L0 partition was materialized (per the instance)."""
    done = {str(k) for k in instance.get_materialized_partitions(AssetKey("l0_raw"))}
    return {d for d in DOMAINS if partition_key_string(d, batch) in done}


def chosen_domains(in_batch: list[str], wanted: list[str] | None, batch: str) -> list[str]:
    """The batch's domains, or the ``wanted`` ones, which must all be in the batch."""
    missing = sorted(set(wanted or ()) - set(in_batch))
    if missing:
        raise UserError(f"batch {batch!r} has no source for domain(s) {', '.join(missing)}; "
                        f"its domains: {', '.join(in_batch) or 'none'}")
    return [d for d in in_batch if not wanted or d in wanted]


def _partition(keys: tuple[str, ...], domain: str, batch: str) -> str:
    """The classifier is partitioned by domain only; the tiers by domain x batch."""
    return domain if keys == ("l2_classifier",) else partition_key(domain, batch)


def run_domain(defs: Definitions, instance: DagsterInstance, domain: str, batch: str, progress: Progress,
               steps: tuple[tuple[str, ...], ...] = DOMAIN_STEPS) -> bool:
    """L0 -> L4 (or ``steps``) for one domain of the batch; after a failed run its later runs are skipped (False)."""
    for n, keys in enumerate(steps):
        config = {**DEMO_CONFIG, **DOMAIN_DEMO_CONFIG.get(domain, {})}
        outcome = run_assets(defs, instance, list(keys), _partition(keys, domain, batch), config,
                             raise_on_error=False)
        progress.record(outcome)
        if not outcome.ok:
            for later in steps[n + 1:]:
                progress.skip(list(later), _partition(later, domain, batch), f"{'+'.join(keys)} failed")
            return False
    return True


def run_demo(data_root: str | None = None, batch: str = DEMO_BATCH, registry: str | None = None,
             domains: list[str] | None = None, verbose: bool = False, through: str = "L4") -> list[RunOutcome]:
    """Register ``batch`` (once) and materialize its domains' tiers up to ``through``; returns every run's outcome."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    store = TierStore(data_root)
    instance = DagsterInstance.get()
    chosen = chosen_domains(ensure_batch(store.root, batch, registry, instance), domains, batch)  # usage errors first
    log = None if verbose else log_path(store, "demo")
    with console_output(log) as console:
        defs = build_definitions(store.uri)
        steps, final = STEPS_THROUGH[through], FINAL_STEPS if through == "L4" else ()
        progress = Progress(len(chosen) * len(steps) + len(final), console, "demo")
        reached_l4 = [domain for domain in chosen if run_domain(defs, instance, domain, batch, progress, steps)]
        for keys in final:  # the index and stats over every L4 partition; pointless if none is new
            if reached_l4:
                progress.record(run_assets(defs, instance, list(keys), raise_on_error=False))
            else:
                progress.skip(list(keys), None, "no domain reached L4")
    print_summary(store, [batch], progress, log, instance.root_directory)
    return progress.outcomes
