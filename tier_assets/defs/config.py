"""Run configuration shared by the tier assets: launchpad overrides of the tier's recipe file."""

from typing import Any

import yaml
from dagster import Config


class RecipeOverrides(Config):
    """Overrides of ``tier_assets/recipes/<tier>.yaml`` for this run, as YAML.

    Examples: L1 ``dedup: {cosine_threshold: 0.9}``; L2 ``seeds: 64`` or
    ``{threshold: 3, top_fraction: null}``; L3 ``{budget_tokens: 5000, max_docs: 4}``;
    L4 ``{budget_tokens: 4000, llm_extraction: false}``. Invalid keys or values fail the
    run before any work, naming the setting.
    """

    overrides_yaml: str = ""

    def parsed(self) -> dict[str, Any]:
        value = yaml.safe_load(self.overrides_yaml) if self.overrides_yaml.strip() else {}
        if not isinstance(value, dict):
            raise ValueError(f"overrides_yaml must be a YAML mapping, got {self.overrides_yaml!r}")
        return value
