"""Tier value: proxy models trained on each tier at an equal token budget (thin over curation.tier_value)."""

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from tier_assets.curation.tier_value import (
    BUILTIN_ARMS,
    ProxyConfig,
    TierValueConfig,
    markdown,
    parse_spec,
    plot_markdown,
    results_dir,
    verify_tiers,
)
from tier_assets.defs.resources import TierStoreResource


class ProxyLaunchConfig(Config):
    """Proxy settings; unset keeps the mode's default (see ``ProxyConfig``)."""

    vocab_size: int | None = None
    hidden_size: int | None = None
    layers: int | None = None
    heads: int | None = None
    intermediate_size: int | None = None
    seq_len: int | None = None
    batch_size: int | None = None
    epochs: int | None = None
    lr: float | None = None
    base_model: str | None = None
    device: str | None = None


class TierValueLaunchConfig(Config):
    """Launchpad settings; defaults: the CPU demo scale (4 arms x 3 seeds, about ten minutes on 2 cores)."""

    domain: str = "en"
    token_budget: int = 40_000
    seeds: list[int] = [0, 1, 2]
    arms: list[str] = list(BUILTIN_ARMS)
    extra_specs: list[str] = []  # stage names or JSON spec files
    mode: str = "tiny"  # tiny (CPU, from scratch) | decay (SmolLM2-135M, meant for a GPU)
    eval_path: str = ""  # empty: the shipped held-out text
    max_eval_tokens: int = 20_000
    mmlu_items: int = 200
    short_arm: str = "report"
    time_limit_s: float = 900.0
    proxy: ProxyLaunchConfig = ProxyLaunchConfig()


@asset(
    group_name="evaluation",
    deps=["l0_raw", "l1_filtered", "l2_selected", "l3_refined"],
    kinds={"pytorch"},
    description="Proxy LMs trained on L0, L1, L2, L2 + L3 (and named export specs) at an equal token budget; "
    "held-out perplexity and MMLU accuracy with 95% intervals over seeds; "
    "results under {data_root}/tier_value/",
)
def tier_value(
    context: AssetExecutionContext, config: TierValueLaunchConfig, tier_store: TierStoreResource
) -> MaterializeResult:
    store = tier_store.store()
    proxy = ProxyConfig.for_mode(config.mode, **config.proxy.model_dump())
    results = verify_tiers(
        store,
        TierValueConfig(
            domain=config.domain,
            token_budget=config.token_budget,
            seeds=tuple(config.seeds),
            arms=tuple(config.arms),
            extra_specs=tuple(parse_spec(s) for s in config.extra_specs),
            eval_path=config.eval_path or None,
            max_eval_tokens=config.max_eval_tokens,
            mmlu_items=config.mmlu_items,
            short_arm=config.short_arm,
            time_limit_s=config.time_limit_s,
            proxy=proxy,
        ),
        log=context.log.info,
    )
    return MaterializeResult(
        metadata={
            "table": MetadataValue.md(markdown(results)),
            "plot": MetadataValue.md(plot_markdown(results)),
            "heldout_removed": results["heldout"]["removed"],
            "short_arms": [row["arm"] for row in results["summary"] if row["short"]],
            "versions": MetadataValue.json(results["versions"]),
            "seconds": results["seconds"],
            "results": MetadataValue.path(str(results_dir(store) / "results.json")),
        }
    )
