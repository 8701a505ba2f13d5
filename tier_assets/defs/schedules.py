"""Scheduled backfills: re-run partitions made by an older recipe, benchmark set or classifier."""

from collections.abc import Sequence

from dagster import (
    AssetKey,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from tier_assets.curation.staleness import VERSIONED, stale_partitions
from tier_assets.defs.registry import asset_of, partition_key, partition_key_string
from tier_assets.defs.resources import TierStoreResource


def build_stale_schedule(asset_keys: Sequence[str]) -> ScheduleDefinition:
    """The nightly stale-partition backfill over the versioned tiers present in ``asset_keys``."""
    tiers = [t for t in VERSIONED if asset_of(t) in asset_keys]

    @schedule(
        name="stale_partitions_backfill",
        cron_schedule="0 3 * * *",
        target=[AssetKey(asset_of(t)) for t in tiers],
        default_status=DefaultScheduleStatus.RUNNING,
        description="Nightly: finds tier partitions made by an older recipe/benchmark set/classifier and "
                    "re-materializes them.",
    )
    def stale_partitions_backfill(context: ScheduleEvaluationContext, tier_store: TierStoreResource):
        stale = stale_partitions(tier_store.store(), tiers)
        if not stale:
            return SkipReason("no stale partitions")
        requests = []
        for s in stale:
            context.log.info(f"stale {s.tier} {s.domain}/{s.batch}: {s.key} {s.recorded} -> {s.current}")
            requests.append(RunRequest(
                run_key=f"stale:{s.tier}:{partition_key_string(s.domain, s.batch)}:{s.current}",
                partition_key=partition_key(s.domain, s.batch),
                asset_selection=[AssetKey(asset_of(s.tier))],
                tags={"tier_assets/stale_reason": f"{s.key} {s.recorded} -> {s.current}"},
            ))
        return requests

    return stale_partitions_backfill
