"""The L2 recipe: seed sampling, reference text, distillation split and selection rule per domain.

Defaults live in ``recipes/l2.yaml`` (or ``$TIER_ASSETS_L2_RECIPE``). Settings that
shape the classifier (seeds, references, ``max_chars``, split) are hashed into its
version through the seed set and annotator; selection settings are not, because
they do not change what the classifier learned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tier_assets.curation.settings import build_config, domain_settings
from tier_assets.curation.validation import check_at_least_one

PACKAGE_DIR = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class L2Settings:
    domain: str
    seeds: int = 500
    seed: int = 0
    references: tuple[str, ...] = ()
    max_references: int | None = None
    max_chars: int = 1200
    heldout_fraction: float = 0.2
    threshold: float | None = None
    top_fraction: float | None = 0.5
    injection_penalty: float = 1.0
    records_per_batch: int | None = None

    def __post_init__(self) -> None:
        check_at_least_one(self, "records_per_batch", integer=True, optional=True)
        if self.seeds < 0:
            raise ValueError(f"L2 recipe: seeds must be >= 0, got {self.seeds}")
        if self.max_references is not None and self.max_references < 0:
            raise ValueError(f"L2 recipe: max_references must be >= 0 or null, got {self.max_references}")
        if self.max_chars < 50:
            raise ValueError(f"L2 recipe: max_chars must be >= 50, got {self.max_chars}")
        if not 0 < self.heldout_fraction < 1:
            raise ValueError(f"L2 recipe: heldout_fraction must be in (0, 1), got {self.heldout_fraction}")
        if (self.threshold is None) == (self.top_fraction is None):
            raise ValueError("L2 recipe: give exactly one of threshold or top_fraction (set the other to null)")
        if self.threshold is not None and not 0 <= self.threshold <= 5:
            raise ValueError(f"L2 recipe: threshold is on the 0-5 scale, got {self.threshold}")
        if self.top_fraction is not None and not 0 <= self.top_fraction <= 1:
            raise ValueError(f"L2 recipe: top_fraction must be in [0, 1], got {self.top_fraction}")
        if not math.isfinite(self.injection_penalty) or self.injection_penalty < 0:
            raise ValueError(f"L2 recipe: injection_penalty must be >= 0, got {self.injection_penalty}")
        object.__setattr__(self, "references", tuple(str(p) for p in self.references))
        for path in self.reference_paths:
            if not path.is_file():
                raise ValueError(f"L2 recipe: reference file not found: {path}")

    @property
    def reference_paths(self) -> list[Path]:
        """Reference files, relative paths taken from the ``tier_assets`` package directory."""
        return [p if p.is_absolute() else PACKAGE_DIR / p for p in map(Path, self.references)]


def load_l2_settings(domain: str, overrides: dict[str, Any] | None = None, path: str | Path | None = None) -> L2Settings:
    """Merge defaults, domain settings and ``overrides``; raise ValueError on anything invalid."""
    merged = domain_settings("l2", domain, overrides, path)
    return build_config(L2Settings, "L2 recipe", {"domain": domain, **merged})
