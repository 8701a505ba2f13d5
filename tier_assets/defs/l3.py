"""L3 refined: the best L2 documents rewritten and synthesized by the LLM under a token budget, verified."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from tier_assets.curation.l3.settings import load_l3_settings
from tier_assets.curation.l3.tier import refine_stored_partition
from tier_assets.curation.stats import markdown_table
from tier_assets.curation.storage import PartitionRef
from tier_assets.defs.config import RecipeOverrides
from tier_assets.defs.registry import split_key
from tier_assets.defs.resources import EmbedderResource, LLMResource, TierStoreResource
from tier_assets.defs.tier_asset import partition_result, stages_table, tier_asset

BUDGET_CHECK = "budget_held_and_outputs_accounted"


@tier_asset("L3", BUDGET_CHECK, "tokens spent <= budget; kept + rejected on disk = outputs attempted",
            "L3 refined: rewrites, graded Q&A, dialogues, math knowledge points + exercises, code explanations "
            "from the best L2 documents under a token budget; each output parsed and verified against its "
            "source (similarity, numbers/formulas/entities, LLM faithfulness); failures kept in L3 rejected.",
            deps=["l2_selected"], pool="llm")
def l3_refined(context: AssetExecutionContext, config: RecipeOverrides, tier_store: TierStoreResource,
               llm: LLMResource, embedder: EmbedderResource) -> MaterializeResult:
    domain, batch = split_key(context.partition_key)
    settings = load_l3_settings(domain, config.parsed())  # invalid values fail here, before any LLM call
    store = tier_store.store()
    stats = refine_stored_partition(store, domain, batch, llm.get(), embedder.get(), settings, context.log.info)
    ref = PartitionRef("L3", domain, batch)

    def budget_check() -> tuple[list[str], dict[str, int]]:
        found = []
        if stats.spent_tokens > stats.budget_tokens:
            found.append(f"spent {stats.spent_tokens} tokens of a {stats.budget_tokens} budget")
        on_disk = (store.count(ref), store.count(ref, "rejected"))
        if on_disk != (stats.kept, stats.rejected):
            found.append(f"on disk kept/rejected {on_disk} != produced {(stats.kept, stats.rejected)}")
        return found, {"spent_tokens": stats.spent_tokens, "budget_tokens": stats.budget_tokens}

    formats = [{"format": f, **c} for f, c in stats.per_format.items()]
    return partition_result(
        store, "L3", domain, batch,
        metadata={
            "l2_input": stats.docs_in,
            "docs_refined": stats.docs_refined,
            "docs_not_refined": MetadataValue.json(stats.docs_not_refined),
            "outputs": stats.outputs,
            "records_kept": stats.kept,
            "records_rejected": stats.rejected,
            "budget_tokens": stats.budget_tokens,
            "spent_tokens": stats.spent_tokens,
            "budget_exhausted": stats.budget_exhausted,
            "tokens_out": stats.tokens_out,
            "stages": stages_table(stats.stages),
            "per_format": MetadataValue.md(markdown_table(formats)),
            "rejection_reasons": MetadataValue.json(stats.reasons),
            "llm": MetadataValue.json(stats.llm),
            "prompt_version": stats.prompt_version,
            "llm_cache": MetadataValue.json(stats.llm_cache),
        },
        check=BUDGET_CHECK, run_check=budget_check,
    )
