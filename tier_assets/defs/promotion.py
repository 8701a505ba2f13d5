"""Promotion: when a tier's partition is materialized and its blocking checks passed,
request the next tier for the same partition; and refresh the tier stats after any tier.

One sensor per tier pair. The cursor is the last materialization storage id seen,
so a materialization is considered once; run keys make repeated requests no-ops.
A partition whose next tier was already materialized after it (e.g. the demo runs
every tier in one run) is not requested again.
"""

from collections.abc import Sequence

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

TIER_CHAIN = ("l0_raw", "l1_filtered", "l2_selected", "l3_refined", "l4_organized")
STATS_ASSET = "tier_stats"


def checks_passed(instance: DagsterInstance, run_id: str, asset: AssetKey) -> tuple[bool, list[str]]:
    """Whether every check evaluated for ``asset`` in ``run_id`` passed (and which failed)."""
    failed, seen = [], 0
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        if evaluation.asset_key != asset:
            continue
        seen += 1
        if not evaluation.passed:
            failed.append(evaluation.check_name)
    return seen > 0 and not failed, failed


def _already_promoted(instance: DagsterInstance, downstream: AssetKey, partition: str, after: int) -> bool:
    result = instance.fetch_materializations(
        AssetRecordsFilter(downstream, asset_partitions=[partition], after_storage_id=after), limit=1)
    return bool(result.records)


def promotion_sensor(upstream: str, downstream: str) -> SensorDefinition:
    up, down = AssetKey(upstream), AssetKey(downstream)

    @sensor(
        name=f"promote_{upstream}_to_{downstream}",
        asset_selection=[down],
        minimum_interval_seconds=15,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Requests {downstream} for each {upstream} partition whose blocking checks passed.",
    )
    def _promote(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        after = int(context.cursor) if context.cursor else 0
        result = context.instance.fetch_materializations(
            AssetRecordsFilter(up, after_storage_id=after), limit=200, ascending=True)
        if not result.records:
            return SkipReason(f"no new {upstream} materializations")
        requests, cursor = [], after
        for record in result.records:
            cursor = max(cursor, record.storage_id)
            partition = record.partition_key
            passed, failed = checks_passed(context.instance, record.run_id, up)
            if not passed:
                context.log.info(f"not promoting {upstream} {partition}: checks failed or missing {failed}")
                continue
            if _already_promoted(context.instance, down, partition, record.storage_id):
                continue
            requests.append(RunRequest(run_key=f"{downstream}:{partition}:{record.storage_id}",
                                       partition_key=partition, asset_selection=[down],
                                       tags={"tier_assets/promoted_from": upstream}))
        return SensorResult(run_requests=requests, cursor=str(cursor))

    return _promote


def stats_sensor(tiers: Sequence[str]) -> SensorDefinition:
    """Requests one ``tier_stats`` refresh per tick in which any tier was materialized."""

    @sensor(name="tier_stats_sensor", asset_selection=[AssetKey(STATS_ASSET)], minimum_interval_seconds=30,
            default_status=DefaultSensorStatus.RUNNING,
            description="Refreshes the DuckDB tier stats after tier materializations.")
    def _stats(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        after = int(context.cursor) if context.cursor else 0
        newest = after
        for tier in tiers:
            result = context.instance.fetch_materializations(
                AssetRecordsFilter(AssetKey(tier), after_storage_id=after), limit=1, ascending=False)
            if result.records:
                newest = max(newest, result.records[0].storage_id)
        if newest == after:
            return SkipReason("no tier materialized since the last stats refresh")
        return SensorResult(run_requests=[RunRequest(run_key=f"{STATS_ASSET}:{newest}")], cursor=str(newest))

    return _stats


def build_promotion_sensors(asset_keys: Sequence[str]) -> list[SensorDefinition]:
    """Sensors for consecutive tiers that both exist in ``asset_keys``, plus the stats sensor."""
    present = [k for k in TIER_CHAIN if k in asset_keys]
    sensors = [promotion_sensor(a, b) for a, b in zip(present, present[1:], strict=False)]
    if STATS_ASSET in asset_keys:
        sensors.append(stats_sensor(present))
    return sensors
