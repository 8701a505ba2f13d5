"""Engines run a tier's stages: ``local`` (one process, the default) or ``ray`` (a Ray cluster).

``TIER_ASSETS_ENGINE`` picks one (``local`` | ``ray``); the Ray engine connects to
``RAY_ADDRESS`` (unset: a Ray started in this process). An engine makes a runner with
the local ``Pipeline``'s interface (``run(docs, progress, models) -> StepResult`` and
per-stage ``stats``), so a tier changes one line to run anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from tier_assets.curation.pipeline import Doc, Models, Progress, Stage, StageStats, StepResult

ENGINES = ("local", "ray")


class Runner(Protocol):
    stats: dict[str, StageStats]

    def run(self, docs: Iterable[Doc], progress: Progress | None = None,
            models: Models | None = None) -> StepResult: ...


class Engine(Protocol):
    name: str

    def pipeline(self, stages: Sequence[Stage], batch_size: int | None = None) -> Runner: ...


def engine_from_env(environ: Mapping[str, str] = os.environ) -> Engine:
    """The engine ``TIER_ASSETS_ENGINE`` names (default ``local``)."""
    name = environ.get("TIER_ASSETS_ENGINE", "").strip().lower() or "local"
    if name == "local":
        from tier_assets.curation.engines.local import LocalEngine

        return LocalEngine()
    if name == "ray":
        try:
            from tier_assets.curation.engines.ray import RayEngine
        except ImportError as err:
            raise ImportError(f"TIER_ASSETS_ENGINE=ray needs Ray Data ({err}): pip install 'tier_assets[cluster]'") from err
        return RayEngine(environ.get("RAY_ADDRESS") or None)
    raise ValueError(f"TIER_ASSETS_ENGINE={name!r}: known engines are {ENGINES}")
