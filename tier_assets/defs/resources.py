"""Resources: where the tiers live (and, per environment, which models and devices run)."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource

from tier_assets.curation.storage import TierStore


class TierStoreResource(ConfigurableResource):
    """The data root: tiers, rejected sets, batch manifests, inbox and ``catalog.duckdb``."""

    data_root: str = "data"

    def store(self) -> TierStore:
        return TierStore(self.data_root)

    @property
    def root(self) -> Path:
        return self.store().root

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"


def default_data_root() -> str:
    return os.environ.get("TIER_ASSETS_DATA_ROOT", str(Path("data").resolve()))
