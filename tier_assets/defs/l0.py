"""L0 raw: every record of a batch's files for one domain, as extracted, with provenance."""


from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue

from tier_assets.curation.l0 import IngestStats, accounting_problems, ingest_partition
from tier_assets.curation.readers import ReaderConfig
from tier_assets.curation.sources import read_manifest
from tier_assets.curation.stats import markdown_table
from tier_assets.curation.storage import PartitionRef
from tier_assets.defs.registry import split_key
from tier_assets.defs.resources import TierStoreResource
from tier_assets.defs.tier_asset import partition_result, tier_asset

ACCOUNTING_CHECK = "records_accounted"


class L0Config(Config):
    max_record_bytes: int = 10_000_000
    max_code_file_bytes: int = 1_000_000


@tier_asset("L0", ACCOUNTING_CHECK, "records read = kept + quarantined, no record written twice",
            "L0 raw: every record of the batch's files, as extracted, with provenance; bad records quarantined.")
def l0_raw(context: AssetExecutionContext, config: L0Config, tier_store: TierStoreResource) -> MaterializeResult:
    domain, batch = split_key(context.partition_key)
    store = tier_store.store()
    entries = read_manifest(store.root, batch).for_domain(domain)
    ref = PartitionRef("L0", domain, batch)
    reader_config = ReaderConfig(max_record_bytes=config.max_record_bytes,
                                 max_code_file_bytes=config.max_code_file_bytes)

    def progress(stats: IngestStats, current: str) -> None:
        rate = stats.read / max(stats.seconds, 1e-9)
        context.log.info(f"L0 {domain}/{batch}: {stats.read} read ({rate:.0f}/s), {stats.kept} kept, "
                         f"{stats.quarantined} quarantined; now {current}")

    context.log.info(f"L0 {domain}/{batch}: {len(entries)} source entries")
    stats = ingest_partition(store, ref, entries, reader_config, progress)
    summary = {k: v for k, v in stats.as_dict().items() if k != "per_source"}
    context.log.info(f"L0 {domain}/{batch}: done from {len(stats.per_source)} source files, {summary}")
    return partition_result(
        store, "L0", domain, batch,
        metadata={
            "records_read": stats.read,
            "records_kept": stats.kept,
            "records_quarantined": stats.quarantined,
            "bytes_kept": stats.bytes_kept,
            "docs_per_second": round(stats.read / max(stats.seconds, 1e-9), 1),
            "quarantine_reasons": MetadataValue.json(dict(stats.reasons)),
            "per_source": MetadataValue.md(markdown_table([{"source file": k, **v}
                                                           for k, v in sorted(stats.per_source.items())])),
        },
        check=ACCOUNTING_CHECK,
        run_check=lambda: (accounting_problems(store, ref, expected_read=stats.read),
                           {"read": stats.read, "kept": stats.kept, "quarantined": stats.quarantined}),
    )
