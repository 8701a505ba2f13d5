"""Sensors: the inbox sensor turns dropped files into batches and requests their L0.

The inbox is untrusted: the sensor lands plain files only and sets everything else aside with a reason
file (see ``curation.sources.land_inbox``); it never follows a link out of the data root.
"""


from dagster import (
    AddDynamicPartitionsRequest,
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from tier_assets.curation.sources import land_inbox, list_batches, new_batch_key, read_manifest
from tier_assets.defs.registry import BATCH_PARTITIONS_NAME, partition_key
from tier_assets.defs.resources import TierStoreResource


@sensor(
    name="inbox_sensor",
    asset_selection=[AssetKey("l0_raw")],
    minimum_interval_seconds=15,
    default_status=DefaultSensorStatus.RUNNING,
    description="New files in {data_root}/inbox/<domain>/ become a batch; requests L0 for each domain in it.",
)
def inbox_sensor(context: SensorEvaluationContext, tier_store: TierStoreResource) -> SensorResult | SkipReason:
    root = tier_store.root
    landing = land_inbox(root, tier_store.inbox, new_batch_key())
    for aside in landing.set_aside:
        context.log.warning(f"inbox: set aside {aside.name} -> {aside.moved_to}: {aside.reason}")
    known = set(context.instance.get_dynamic_partitions(BATCH_PARTITIONS_NAME))
    # Manifests without a partition: just landed, or landed by a tick that died before returning.
    pending = [b for b in list_batches(root) if b not in known]
    if not pending:
        aside = f"; {len(landing.set_aside)} entries set aside (see their reason files)" if landing.set_aside else ""
        return SkipReason(f"no new files in the inbox{aside}")
    requests = []
    for batch in pending:
        for domain in read_manifest(root, batch).domains:
            requests.append(RunRequest(run_key=f"l0:{batch}:{domain}", partition_key=partition_key(domain, batch),
                                       tags={"tier_assets/batch": batch, "tier_assets/domain": domain}))
    if landing.manifest:
        context.log.info(f"landed {len(landing.manifest.entries)} files as batch {landing.manifest.batch}")
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[AddDynamicPartitionsRequest(BATCH_PARTITIONS_NAME, pending)],
    )
