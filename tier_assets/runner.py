"""Materialize assets through Dagster from the shell (demo, backfills), on the instance at ``$DAGSTER_HOME``.

Each call is one Dagster run, so the UI shows it with its logs, metadata and
check results exactly as if it had been launched there.
"""

from __future__ import annotations

from typing import Any

from dagster import DagsterInstance, Definitions, materialize

from tier_assets.curation.sources import read_manifest
from tier_assets.curation.storage import TierStore
from tier_assets.definitions import MODEL_ASSETS, TIER_ASSETS, build_definitions
from tier_assets.defs.partitions import BATCH_PARTITIONS_NAME, partition_key
from tier_assets.defs.schedules import TIER_ASSET

DOMAIN_ORDER = ("en", "zh", "math", "code")


def run_assets(defs: Definitions, instance: DagsterInstance, keys: list[str], partition: Any = None,
               config: dict[str, str] | None = None, raise_on_error: bool = True) -> bool:
    """Materialize the assets ``keys`` (one partitions definition) in one run; ``config``: asset -> overrides YAML."""
    assets = list(defs.assets or [])
    run_config = {"ops": {k: {"config": {"overrides_yaml": v}} for k, v in (config or {}).items() if k in keys}}
    result = materialize(assets, instance=instance, partition_key=partition, resources=defs.resources,
                         selection=keys, run_config=run_config, raise_on_error=raise_on_error)
    return result.success


def backfill(data_root: str | None, asset_key: str, domains: list[str] | None = None,
             batches: list[str] | None = None, stale_only: bool = False) -> list[str]:
    """Materialize ``asset_key`` for every matching partition, one Dagster run each, in key order."""
    from tier_assets.curation.staleness import VERSIONED, stale_partitions

    store = TierStore(data_root)
    instance = DagsterInstance.get()
    defs = build_definitions(str(store.root))
    known_assets = [a.key.to_user_string() for a in [*TIER_ASSETS, *MODEL_ASSETS]]
    if asset_key not in known_assets:
        raise SystemExit(f"unknown asset {asset_key!r}; known: {known_assets}")
    if asset_key in [a.key.to_user_string() for a in MODEL_ASSETS]:  # partitioned by domain only
        done = []
        for domain in [d for d in DOMAIN_ORDER if not domains or d in domains]:
            ok = run_assets(defs, instance, [asset_key], domain, raise_on_error=False)
            done.append(f"{domain}:{'ok' if ok else 'failed'}")
            print(f"[backfill] {asset_key} {domain}: {'ok' if ok else 'FAILED'}", flush=True)
        return done
    keys = sorted(instance.get_dynamic_partitions(BATCH_PARTITIONS_NAME))
    if batches and set(batches) - set(keys):
        raise SystemExit(f"unknown batch(es) {sorted(set(batches) - set(keys))}; known: {keys}")
    wanted = [(d, b) for b in keys for d in DOMAIN_ORDER
              if (not domains or d in domains) and (not batches or b in batches)]
    if stale_only:
        tier = next((t for t in VERSIONED if TIER_ASSET[t] == asset_key), None)
        if tier is None:
            raise SystemExit(f"--stale: {asset_key} is not versioned; versioned: {[TIER_ASSET[t] for t in VERSIONED]}")
        stale = {(s.domain, s.batch) for s in stale_partitions(store, [tier])}
        wanted = [p for p in wanted if p in stale]
    done = []
    for domain, batch in wanted:
        if not read_manifest(store.root, batch).for_domain(domain):
            continue
        ok = run_assets(defs, instance, [asset_key], partition_key(domain, batch), raise_on_error=False)
        done.append(f"{batch}|{domain}:{'ok' if ok else 'failed'}")
        print(f"[backfill] {asset_key} {domain}/{batch}: {'ok' if ok else 'FAILED'}", flush=True)
    return done
