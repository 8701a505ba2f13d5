"""The local engine: today's ``Pipeline``, one process, batches in turn."""

from __future__ import annotations

from collections.abc import Sequence

from tier_assets.curation.pipeline import Pipeline, Stage


class LocalEngine:
    name = "local"

    def pipeline(self, stages: Sequence[Stage], batch_size: int | None = None) -> Pipeline:
        return Pipeline(stages, batch_size)
