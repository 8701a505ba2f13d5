"""tier_stats: DuckDB SQL from sql/ over every tier, published as materialization metadata."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from tier_assets.curation.stats import all_stats, markdown_table
from tier_assets.defs.resources import TierStoreResource


@asset(
    key="tier_stats",
    group_name="observability",
    kinds={"duckdb"},
    description="Tier summary, L0->L4 funnel, rejection reasons, score distributions and duplicate "
                "cluster sizes, computed by the SQL in sql/ over the Parquet tiers.",
)
def tier_stats(context: AssetExecutionContext, tier_store: TierStoreResource) -> MaterializeResult:
    stats = all_stats(tier_store.store())
    summary = stats["tier_summary"]
    metadata: dict = {name: MetadataValue.md(markdown_table(rows)) for name, rows in stats.items()}
    for tier in ("L0", "L1", "L2", "L3", "L4"):
        rows = [r for r in summary if r["tier"] == tier]
        metadata[f"{tier}_documents"] = sum(r["documents"] for r in rows)
        metadata[f"{tier}_est_tokens"] = sum(r["est_tokens"] or 0 for r in rows)
    context.log.info(f"tier stats: {[(k, v) for k, v in metadata.items() if not isinstance(v, MetadataValue)]}")
    return MaterializeResult(metadata=metadata)
