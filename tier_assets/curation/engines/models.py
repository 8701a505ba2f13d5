"""Models rebuilt inside a worker from a small picklable recipe, never shipped as objects.

A model stage on a cluster runs in other processes, possibly on other machines with a
GPU. Pickling a loaded MiniLM or LLM would copy hundreds of MB per actor and pin it to
the driver's device, so the driver sends what names the model (the embedder's id, the
classifier's weights and card: kilobytes) and each actor loads the heavy part itself,
on its own device. The version the driver saw is checked again in the worker, so a
worker can never score with a different model than the one the run records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tier_assets.curation.pipeline import Models


@dataclass(frozen=True)
class EmbedderRecipe:
    model: str | None
    version: str

    def build(self) -> Any:
        from tier_assets.curation.models.embedder import get_embedder

        embedder = get_embedder(self.model)
        if embedder.version != self.version:
            raise ValueError(f"embedder built in the worker is {embedder.version}, the driver's is {self.version}")
        return embedder


@dataclass(frozen=True)
class ClassifierRecipe:
    """What ``QualityClassifier.save`` writes: its embedder is loaded in the worker on first use."""

    coef: np.ndarray
    intercept: float
    stats_mean: np.ndarray
    stats_std: np.ndarray
    card: dict[str, Any]

    def build(self) -> Any:
        from tier_assets.curation.l2.distill import QualityClassifier, featurize

        featurize([], self.card["features"])  # loads its embedder now, in setup, not inside the first batch
        return QualityClassifier(self.coef, self.intercept, self.stats_mean, self.stats_std, dict(self.card))


@dataclass(frozen=True)
class ModelsFactory:
    """Builds a worker's ``Models`` from recipes; ``from_models`` takes them from the driver's models."""

    embedder: EmbedderRecipe | None = None
    classifier: ClassifierRecipe | None = None

    def build(self, names: set[str]) -> Models:
        """The ``names`` models this factory has a recipe for (a stage's ``setup`` names any other)."""
        return Models(embedder=self.embedder.build() if self.embedder and "embedder" in names else None,
                      classifier=self.classifier.build() if self.classifier and "classifier" in names else None)

    @classmethod
    def from_models(cls, models: Models, needed: set[str]) -> ModelsFactory:
        """Recipes for the ``needed`` models the driver holds (a missing one stays missing: setup names it)."""
        from tier_assets.curation.l2.distill import QualityClassifier
        from tier_assets.curation.models.embedder import DEFAULT_EMBEDDER, Embedder

        unsupported = sorted(needed - {"embedder", "classifier"})
        if unsupported:
            raise ValueError(f"the Ray engine cannot build {unsupported} in its workers yet: "
                             "run the LLM tiers (L3, L4) with TIER_ASSETS_ENGINE=local")
        embedder = classifier = None
        if "embedder" in needed and models.embedder is not None:
            if not isinstance(models.embedder, Embedder):
                raise ValueError(f"the Ray engine rebuilds the embedder by name; got a {type(models.embedder).__name__}")
            name = models.embedder.model_id
            # the default by None, as featurize asks for it: one cached MiniLM per worker, not two
            embedder = EmbedderRecipe(None if name == DEFAULT_EMBEDDER else name, models.embedder.version)
        if "classifier" in needed and models.classifier is not None:
            c = models.classifier
            if not isinstance(c, QualityClassifier):
                raise ValueError(f"the Ray engine rebuilds the classifier from its weights; got a {type(c).__name__}")
            classifier = ClassifierRecipe(c.coef, c.intercept, c.stats_mean, c.stats_std, dict(c.card))
        return cls(embedder, classifier)
