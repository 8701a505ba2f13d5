"""`tier-assets demo`: register the bundled corpus as a batch and materialize it tier by tier.

Runs go through Dagster on the instance at ``$DAGSTER_HOME``, so `make ui` shows
the materializations, their metadata, check results and lineage afterwards.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from dagster import DagsterInstance, materialize

from tier_assets.curation.sources import batch_from_registry, load_registry, manifest_path, read_manifest
from tier_assets.curation.storage import TierStore
from tier_assets.definitions import TIER_ASSETS, build_definitions
from tier_assets.defs.partitions import BATCH_PARTITIONS_NAME, partition_key
from tier_assets.defs.stats import tier_stats

DEMO_BATCH = "demo-0001"


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
        print(f"[demo] materializing {domain}/{batch} ...", flush=True)
        result = materialize(TIER_ASSETS, instance=instance, partition_key=partition_key(domain, batch),
                             resources=defs.resources)
        if not result.success:
            raise SystemExit(f"[demo] run for {domain}/{batch} failed; see `make ui` for its logs")
        counts = {}
        for tier in ("L0", "L1", "L2", "L3", "L4"):
            refs = [r for r in store.partitions(tier) if r.domain == domain and r.batch == batch]
            if refs:
                counts[tier] = store.count(refs[0])
                counts[f"{tier}_rejected"] = store.count(refs[0], "rejected")
        summary[domain] = counts
        print(f"[demo] {domain}: {counts} in {time.perf_counter() - start:.1f}s", flush=True)
    materialize([tier_stats], instance=instance, resources=defs.resources)
    print(f"[demo] data root: {store.root}; catalog: {store.catalog_path}")
    print("[demo] open the UI with `make ui` (http://127.0.0.1:3000), or the catalog with "
          f"`duckdb {store.catalog_path}`")
    return summary
