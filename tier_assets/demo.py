"""`tier-assets demo`: register the bundled corpus as a batch and materialize it tier by tier.

Runs go through Dagster on the instance at ``$DAGSTER_HOME``, so `make ui` shows
the materializations, their metadata, check results and lineage afterwards. The
LLM tiers run with CPU-sized settings (``DEMO_CONFIG``): a few seeds per domain
for the L2 classifier, small token budgets for L3 and L4.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from dagster import DagsterInstance

from tier_assets.curation.sources import batch_from_registry, load_registry, manifest_path, read_manifest
from tier_assets.curation.storage import TierStore
from tier_assets.definitions import build_definitions
from tier_assets.defs.partitions import BATCH_PARTITIONS_NAME, partition_key
from tier_assets.runner import run_assets

DEMO_BATCH = "demo-0001"
# asset -> launchpad overrides (YAML) for a CPU demo of a few minutes
DEMO_CONFIG = {
    "l2_classifier": "seeds: 12\nmax_references: 6\nmax_chars: 600",
    "l3_refined": "budget_tokens: 6000\nmax_new_tokens: 160\nmax_source_chars: 500\nmax_docs: 2",
    "l4_organized": "budget_tokens: 1200\nmax_new_tokens: 64\nmax_llm_docs: 1",
}


def ensure_batch(root: Path, batch: str, registry: str | None, instance: DagsterInstance) -> list[str]:
    """Write the batch manifest from the registry (once) and add the batch partition."""
    if not manifest_path(root, batch).exists():
        batch_from_registry(root, batch, load_registry(registry))
    if not instance.has_dynamic_partition(BATCH_PARTITIONS_NAME, batch):
        instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, [batch])
    return read_manifest(root, batch).domains


def run_demo(data_root: str | None = None, batch: str = DEMO_BATCH, registry: str | None = None,
             domains: list[str] | None = None) -> dict[str, dict[str, int]]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    store = TierStore(data_root)
    instance = DagsterInstance.get()
    defs = build_definitions(str(store.root))
    summary: dict[str, dict[str, int]] = {}
    for domain in domains or ensure_batch(store.root, batch, registry, instance):
        start = time.perf_counter()
        key = partition_key(domain, batch)
        steps = [(["l0_raw", "l1_filtered"], key), (["l2_classifier"], domain),
                 (["l2_selected", "l3_refined", "l4_organized"], key)]
        for keys, partition in steps:
            print(f"[demo] {domain}/{batch}: materializing {', '.join(keys)} ...", flush=True)
            if not run_assets(defs, instance, keys, partition, DEMO_CONFIG, raise_on_error=False):
                raise SystemExit(f"[demo] {keys} for {domain}/{batch} failed; see `make ui` for the run's logs")
        counts = {}
        for tier in ("L0", "L1", "L2", "L3", "L4"):
            refs = [r for r in store.partitions(tier) if r.domain == domain and r.batch == batch]
            if refs:
                counts[tier] = store.count(refs[0])
                counts[f"{tier}_rejected"] = store.count(refs[0], "rejected")
        summary[domain] = counts
        print(f"[demo] {domain}: {counts} in {time.perf_counter() - start:.1f}s", flush=True)
    run_assets(defs, instance, ["l4_index"])
    run_assets(defs, instance, ["tier_stats"])
    print(f"[demo] data root: {store.root}; catalog: {store.catalog_path}")
    print('[demo] ask L4 with `tier-assets ask "what is ..."`')
    print("[demo] open the UI with `make ui` (http://127.0.0.1:3000), or the catalog with "
          f"`duckdb {store.catalog_path}`")
    return summary
