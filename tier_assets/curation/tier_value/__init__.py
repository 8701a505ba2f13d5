"""Tier value measured by training: proxy models trained on each tier at an equal token budget.

``verify_tiers(store, TierValueConfig(...))`` exports the arms (L0, L1, L2, L2 + L3 and
any named export spec), screens the held-out text against every arm, trains a proxy
per arm and seed, and writes ``{data_root}/tier_value/results.json`` with means and
95% intervals, the versions of data, classifier and proxy, and the conclusions in words.
Importing this package does not import torch; ``verify_tiers`` does, when called.
"""

from typing import Any

from tier_assets.curation.storage import TierStore
from tier_assets.curation.tier_value.arms import parse_spec
from tier_assets.curation.tier_value.config import (
    BUILTIN_ARMS,
    BudgetTooLarge,
    ProxyConfig,
    ShortArm,
    TierValueConfig,
)
from tier_assets.curation.tier_value.evalsets import EvalSetLeak
from tier_assets.curation.tier_value.summary import (
    load_results,
    markdown,
    plot_markdown,
    results_dir,
    table_rows,
)


def verify_tiers(store: TierStore, config: TierValueConfig, log: Any = print) -> dict[str, Any]:
    """See ``run.verify_tiers`` (imported here on first use: it needs torch and transformers)."""
    from tier_assets.curation.tier_value.run import verify_tiers as run

    return run(store, config, log)


__all__ = [
    "BUILTIN_ARMS",
    "BudgetTooLarge",
    "EvalSetLeak",
    "ProxyConfig",
    "ShortArm",
    "TierValueConfig",
    "load_results",
    "markdown",
    "parse_spec",
    "plot_markdown",
    "results_dir",
    "table_rows",
    "verify_tiers",
]
