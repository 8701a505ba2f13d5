"""Training-stage exports: pre-training, decay / mid-training, SFT and RAG mixtures."""

from dagster import AssetExecutionContext, AssetsDefinition, Config, MaterializeResult, MetadataValue, asset

from tier_assets.curation.exports import STAGES, default_spec, export_stage
from tier_assets.curation.stats import markdown_table
from tier_assets.defs.registry import export_deps
from tier_assets.defs.resources import TierStoreResource


class ExportConfig(Config):
    """Launchpad settings; 0 keeps the stage's default token budget."""

    token_budget: int = 0
    seed: int = 0


def export_asset(stage: str, present: list[str]) -> AssetsDefinition:
    @asset(
        name=f"export_{stage}",
        group_name="exports",
        deps=export_deps(stage, present),
        kinds={"parquet"} if stage == "rag" else {"json"},
        description=f"{stage} mixture: token budget, tier and domain weights, repetition caps, seeded sampling; "
                    "shards + manifest under {data_root}/exports/" + stage,
    )
    def _export(context: AssetExecutionContext, config: ExportConfig, tier_store: TierStoreResource) -> MaterializeResult:
        store = tier_store.store()
        spec = default_spec(stage, token_budget=config.token_budget or None, seed=config.seed)
        manifest = export_stage(store, spec, store.root / "exports" / stage)
        context.log.info(f"export {stage}: {manifest.delivered_docs} docs, {manifest.delivered_tokens} tokens"
                         f" of {manifest.requested_tokens} requested; short={manifest.short}")
        tiers = [{"tier": t, **v} for t, v in manifest.tiers.items()]
        return MaterializeResult(metadata={
            "delivered_docs": manifest.delivered_docs,
            "delivered_tokens": manifest.delivered_tokens,
            "requested_tokens": manifest.requested_tokens,
            "short": manifest.short,
            "shortfalls": MetadataValue.md("\n".join(f"- {s}" for s in manifest.shortfalls) or "none"),
            "tiers": MetadataValue.md(markdown_table(tiers)),
            "shards": len(manifest.shards),
            "versions": MetadataValue.json(manifest.versions),
            "manifest": MetadataValue.path(str(manifest.path)),
        })

    return _export


def build_export_assets(present: list[str]) -> list[AssetsDefinition]:
    return [export_asset(stage, present) for stage in STAGES]
