"""The tier_assets code location."""

from __future__ import annotations

from dagster import Definitions

from tier_assets.defs.l0 import l0_raw
from tier_assets.defs.l1 import l1_filtered
from tier_assets.defs.resources import TierStoreResource, default_data_root
from tier_assets.defs.sensors import inbox_sensor


def build_definitions(data_root: str | None = None) -> Definitions:
    return Definitions(
        assets=[l0_raw, l1_filtered],
        sensors=[inbox_sensor],
        resources={"tier_store": TierStoreResource(data_root=data_root or default_data_root())},
    )


defs = build_definitions()
