"""What every tier asset shares: its decorator, and "rebuild the catalog, run the blocking check, report".

Each tier asset is one partition of one tier: it runs the tier's stages through
the library, then hands the counts here. The catalog is rebuilt before the check
because the checks read the files just written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from tier_assets.curation.catalog import build_catalog
from tier_assets.curation.pipeline import StageStats
from tier_assets.curation.stats import markdown_table
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets.defs.registry import asset_of, tier_partitions


def tier_asset(tier: str, check: str, check_description: str, description: str,
               deps: list[Any] | None = None, pool: str | None = None,
               ) -> Callable[[Callable[..., MaterializeResult]], AssetsDefinition]:
    """The ``@asset`` of ``tier``: domain x batch partitions, group "tiers", one blocking check.

    ``pool``: the Dagster concurrency pool its step takes a slot of ("llm" for the tiers that run the LLM),
    so an instance with pool limits (deploy/dagster.postgres.yaml) runs only that many at once.
    """
    key = asset_of(tier)
    return asset(
        key=key,
        group_name="tiers",
        partitions_def=tier_partitions,
        deps=deps,
        check_specs=[AssetCheckSpec(check, asset=key, blocking=True, description=check_description)],
        kinds={"parquet", "python"},
        description=description,
        pool=pool,
    )


def stages_table(stages: Mapping[str, StageStats]) -> MetadataValue:
    """Per-stage counts and rates, as the UI's markdown table."""
    return MetadataValue.md(markdown_table([
        {"stage": s.name, "in": s.docs_in, "kept": s.kept, "rejected": s.rejected,
         "docs/s": round(s.docs_per_second, 1)} for s in stages.values()]))


Check = Callable[[], tuple[list[str], dict[str, Any]]]  # -> (problems, check metadata)


def partition_result(store: TierStore, tier: str, domain: str, batch: str, metadata: dict[str, Any],
                     check: str, run_check: Check) -> MaterializeResult:
    """Rebuild the catalog, run the partition's blocking check on what was written, return the materialization."""
    build_catalog(store)
    found, check_metadata = run_check()
    path = store.partition_uri(PartitionRef(tier, domain, batch))
    return MaterializeResult(
        metadata={**metadata, "path": MetadataValue.path(path)},
        check_results=[AssetCheckResult(
            check_name=check, passed=not found, severity=AssetCheckSeverity.ERROR,
            metadata={**check_metadata, "problems": MetadataValue.json(found[:50])},
        )],
    )
