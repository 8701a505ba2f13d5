"""The tier_assets code location: tier assets, model assets, checks, sensors, schedules and resources."""

from dagster import Definitions

from tier_assets.curation.models.llm import LLMConfig
from tier_assets.defs.exports import build_export_assets
from tier_assets.defs.l0 import l0_raw
from tier_assets.defs.l1 import l1_filtered
from tier_assets.defs.l2 import l2_classifier, l2_selected
from tier_assets.defs.l3 import l3_refined
from tier_assets.defs.l4 import l4_index, l4_organized
from tier_assets.defs.promotion import build_promotion_sensors, with_promotion
from tier_assets.defs.resources import (
    EmbedderResource,
    LLMResource,
    TierStoreResource,
    default_data_root,
    default_llm_config,
)
from tier_assets.defs.schedules import build_stale_schedule
from tier_assets.defs.sensors import inbox_sensor
from tier_assets.defs.stats import tier_stats
from tier_assets.defs.tier_value import tier_value


def build_definitions(data_root: str | None = None, llm_config: LLMConfig | None = None) -> Definitions:
    built = [l0_raw, l1_filtered, l2_selected, l3_refined, l4_organized, l2_classifier, l4_index]
    assets = with_promotion([*built, tier_stats, *build_export_assets([a.key.to_user_string() for a in built]), tier_value])
    keys = [a.key.to_user_string() for a in assets]
    return Definitions(
        assets=assets,
        sensors=[inbox_sensor, *build_promotion_sensors(keys)],
        schedules=[build_stale_schedule(keys)],
        resources={
            "tier_store": TierStoreResource(data_root=data_root or default_data_root()),
            "llm": LLMResource.from_config(llm_config or default_llm_config()),
            "embedder": EmbedderResource(),
        },
    )


defs = build_definitions()
