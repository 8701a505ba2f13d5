"""Promotion: when a tier's partition is materialized and its blocking checks passed,
request the next tier for the same partition; and refresh the tier stats (after any tier)
and the L4 index (after L4).

One sensor per tier pair. The cursor is the last materialization storage id seen,
so a materialization is considered once; run keys make repeated requests no-ops.
A partition whose next tier was already materialized after it (e.g. the demo runs
every tier in one run) is not requested again.

L2 needs its domain's classifier (``l2_classifier``, partitioned by domain). When
an L1 partition is promoted and the domain has none yet, the sensor requests the
classifier instead; when a classifier is materialized, the partitions of its
domain that passed L1 but have no L2 yet are requested.
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

from tier_assets.defs.registry import (
    INDEX_ASSET,
    STATS_ASSET,
    asset_of,
    gate_of,
    promotion_pairs,
    split_key,
    tier_chain,
)


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


def _has_materialization(instance: DagsterInstance, key: AssetKey, partition: str) -> bool:
    return bool(instance.fetch_materializations(AssetRecordsFilter(key, asset_partitions=[partition]), limit=1).records)


def _domain(partition: str) -> str:
    return split_key(partition)[0]


def promotion_sensor(upstream: str, downstream: str) -> SensorDefinition:
    up, down = AssetKey(upstream), AssetKey(downstream)
    gate = AssetKey(gate_of(downstream)) if gate_of(downstream) else None

    @sensor(
        name=f"promote_{upstream}_to_{downstream}",
        asset_selection=[down, gate] if gate else [down],
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
            if gate and not _has_materialization(context.instance, gate, _domain(partition)):
                domain = _domain(partition)
                context.log.info(f"{downstream} {partition} waits for {gate.to_user_string()}[{domain}]")
                requests.append(RunRequest(run_key=f"{gate.to_user_string()}:{domain}:first", partition_key=domain,
                                           asset_selection=[gate], tags={"tier_assets/promoted_from": upstream}))
                continue
            requests.append(RunRequest(run_key=f"{downstream}:{partition}:{record.storage_id}",
                                       partition_key=partition, asset_selection=[down],
                                       tags={"tier_assets/promoted_from": upstream}))
        return SensorResult(run_requests=requests, cursor=str(cursor))

    return _promote


def model_sensor(model: str, upstream: str, downstream: str) -> SensorDefinition:
    """When ``model`` (per domain) is materialized, request ``downstream`` for its domain's waiting partitions."""
    model_key, up, down = AssetKey(model), AssetKey(upstream), AssetKey(downstream)

    @sensor(
        name=f"promote_{model}_to_{downstream}",
        asset_selection=[down],
        minimum_interval_seconds=15,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Requests {downstream} for partitions that passed {upstream} and waited for {model}.",
    )
    def _release(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        after = int(context.cursor) if context.cursor else 0
        result = context.instance.fetch_materializations(
            AssetRecordsFilter(model_key, after_storage_id=after), limit=50, ascending=True)
        if not result.records:
            return SkipReason(f"no new {model} materializations")
        cursor = max(r.storage_id for r in result.records)
        domains = {r.partition_key for r in result.records}
        requests, seen = [], set()
        for record in context.instance.fetch_materializations(AssetRecordsFilter(up), limit=10_000).records:
            partition = record.partition_key  # newest first: the latest materialization of each partition decides
            if partition in seen or _domain(partition) not in domains:
                continue
            seen.add(partition)
            if _has_materialization(context.instance, down, partition):
                continue
            if checks_passed(context.instance, record.run_id, up)[0]:
                requests.append(RunRequest(run_key=f"{downstream}:{partition}:{record.storage_id}",
                                           partition_key=partition, asset_selection=[down],
                                           tags={"tier_assets/promoted_from": model}))
        return SensorResult(run_requests=requests, cursor=str(cursor))

    return _release


def refresh_sensor(target: str, watched: Sequence[str], interval_s: int = 30) -> SensorDefinition:
    """Requests one ``target`` refresh per tick in which any of ``watched`` was materialized."""

    @sensor(name=f"{target}_sensor", asset_selection=[AssetKey(target)], minimum_interval_seconds=interval_s,
            default_status=DefaultSensorStatus.RUNNING,
            description=f"Refreshes {target} after materializations of {', '.join(watched)}.")
    def _refresh(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        after = int(context.cursor) if context.cursor else 0
        newest = after
        for key in watched:
            result = context.instance.fetch_materializations(
                AssetRecordsFilter(AssetKey(key), after_storage_id=after), limit=1, ascending=False)
            if result.records:
                newest = max(newest, result.records[0].storage_id)
        if newest == after:
            return SkipReason(f"nothing of {list(watched)} materialized since the last refresh")
        return SensorResult(run_requests=[RunRequest(run_key=f"{target}:{newest}")], cursor=str(newest))

    return _refresh


def build_promotion_sensors(asset_keys: Sequence[str]) -> list[SensorDefinition]:
    """Sensors for consecutive tiers that both exist in ``asset_keys``, plus the stats sensor."""
    pairs = promotion_pairs(asset_keys)
    sensors = [promotion_sensor(a, b) for a, b in pairs]
    sensors += [model_sensor(model, up, down) for up, down in pairs if (model := gate_of(down)) in asset_keys]
    if STATS_ASSET in asset_keys:
        sensors.append(refresh_sensor(STATS_ASSET, tier_chain(asset_keys)))
    if INDEX_ASSET in asset_keys and asset_of("L4") in asset_keys:
        sensors.append(refresh_sensor(INDEX_ASSET, [asset_of("L4")]))
    return sensors
