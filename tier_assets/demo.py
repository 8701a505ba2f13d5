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


def backfill(data_root: str | None, asset_key: str, domains: list[str] | None = None,
             batches: list[str] | None = None, stale_only: bool = False) -> list[str]:
    """Materialize ``asset_key`` for every matching partition, one Dagster run each, in key order."""
    from tier_assets.curation.staleness import stale_partitions
    from tier_assets.defs.schedules import TIER_ASSET

    store = TierStore(data_root)
    instance = DagsterInstance.get()
    defs = build_definitions(str(store.root))
    asset = next((a for a in TIER_ASSETS if a.key.to_user_string() == asset_key), None)
    if asset is None:
        raise SystemExit(f"unknown asset {asset_key!r}; tier assets: {[a.key.to_user_string() for a in TIER_ASSETS]}")
    keys = sorted(instance.get_dynamic_partitions(BATCH_PARTITIONS_NAME))
    wanted = [(d, b) for b in keys for d in ("en", "zh", "math", "code")
              if (not domains or d in domains) and (not batches or b in batches)]
    if batches and set(batches) - set(keys):
        raise SystemExit(f"unknown batch(es) {sorted(set(batches) - set(keys))}; known: {keys}")
    if stale_only:
        tier = next(t for t, k in TIER_ASSET.items() if k == asset_key)
        stale = {(s.domain, s.batch) for s in stale_partitions(store, [tier])}
        wanted = [p for p in wanted if p in stale]
    done = []
    for domain, batch in wanted:
        if not read_manifest(store.root, batch).for_domain(domain):
            continue
        result = materialize([asset], instance=instance, partition_key=partition_key(domain, batch),
                             resources=defs.resources, selection=[asset.key], raise_on_error=False)
        done.append(f"{batch}|{domain}:{'ok' if result.success else 'failed'}")
        print(f"[backfill] {asset_key} {domain}/{batch}: {'ok' if result.success else 'FAILED'}", flush=True)
    return done
