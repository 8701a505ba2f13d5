"""The tier_assets code location: tier assets, checks, sensors, schedules and resources."""

from dagster import Definitions

from tier_assets.defs.exports import build_export_assets
from tier_assets.defs.l0 import l0_raw
from tier_assets.defs.l1 import l1_filtered
from tier_assets.defs.promotion import build_promotion_sensors
from tier_assets.defs.resources import TierStoreResource, default_data_root
from tier_assets.defs.schedules import build_stale_schedule
from tier_assets.defs.sensors import inbox_sensor
from tier_assets.defs.stats import tier_stats

TIER_ASSETS = [l0_raw, l1_filtered]


def build_definitions(data_root: str | None = None) -> Definitions:
    tier_keys = [a.key.to_user_string() for a in TIER_ASSETS]
    assets = [*TIER_ASSETS, tier_stats, *build_export_assets(tier_keys)]
    keys = [a.key.to_user_string() for a in assets]
    return Definitions(
        assets=assets,
        sensors=[inbox_sensor, *build_promotion_sensors(keys)],
        schedules=[build_stale_schedule(keys)],
        resources={"tier_store": TierStoreResource(data_root=data_root or default_data_root())},
    )


defs = build_definitions()
