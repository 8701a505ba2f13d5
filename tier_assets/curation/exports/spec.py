"""What a training stage gets (:class:`StageSpec`) and the paper's tier -> stage defaults."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from tier_assets.curation.schema import TIERS

# Same chars-per-token ratios as sql/tier_summary.sql, so exports and stats agree.
CHARS_PER_TOKEN = {"zh": 1.5, "code": 3.2, "math": 3.5}
DEFAULT_CHARS_PER_TOKEN = 4.0

OUTPUT_FORMATS = ("jsonl.zst", "parquet")
# text: {"text", "doc_id", "tier", "domain"}; chat: {"messages", ...}; item: an L4 item for RAG
RECORD_FORMATS = ("text", "chat", "item")
STAGES = ("pretrain", "decay", "sft", "rag")

# Budgets sized for the bundled demo corpus; real runs configure billions.
DEFAULT_TOKEN_BUDGETS: dict[str, int | None] = {
    "pretrain": 1_000_000,
    "decay": 200_000,
    "sft": 50_000,
    "rag": None,
}


@dataclass(frozen=True)
class StageSpec:
    """Budget, tier x domain weights, repetition caps and formats of one stage (docs/decisions.md, ADR 13).

    ``token_budget=None`` exports every matching record once; empty ``domain_weights``
    means natural proportions; a tier missing from ``max_repetitions`` never repeats.
    """

    name: str
    tier_weights: Mapping[str, float]
    token_budget: int | None = None
    domain_weights: Mapping[str, float] = field(default_factory=dict)
    max_repetitions: Mapping[str, int] = field(default_factory=dict)
    seed: int = 0
    l3_formats: tuple[str, ...] = ()  # only these L3 formats (signals.l3.format); empty: all
    l2_top_fraction: float | None = None  # only the highest-scored fraction of L2, per domain
    record_format: str = "text"
    output_format: str = "jsonl.zst"
    shard_max_docs: int = 10_000
    index_path: str | None = None  # RAG: the vector index the items belong to, relative to the data root

    def __post_init__(self) -> None:
        if not self.name or not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"stage name must be a plain file-name part, got {self.name!r}")
        unknown = set(self.tier_weights) - set(TIERS)
        if unknown:
            raise ValueError(f"unknown tiers in tier_weights: {sorted(unknown)}")
        weights = [*self.tier_weights.values(), *self.domain_weights.values()]
        if any(w < 0 for w in weights) or not sum(w for w in self.tier_weights.values()) > 0:
            raise ValueError("weights must be >= 0 and at least one tier weight > 0")
        if self.domain_weights and not sum(self.domain_weights.values()) > 0:
            raise ValueError("domain_weights, when given, need at least one weight > 0")
        if any(r < 1 for r in self.max_repetitions.values()):
            raise ValueError("max_repetitions must be >= 1 (1 = no repetition)")
        if self.token_budget is not None and self.token_budget < 0:
            raise ValueError("token_budget must be >= 0 or None")
        if self.l2_top_fraction is not None and not 0 < self.l2_top_fraction <= 1:
            raise ValueError("l2_top_fraction must be in (0, 1]")
        if self.record_format not in RECORD_FORMATS:
            raise ValueError(f"record_format must be one of {RECORD_FORMATS}")
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}")
        if self.shard_max_docs < 1:
            raise ValueError("shard_max_docs must be >= 1")

    @property
    def tiers(self) -> list[str]:
        return [t for t in TIERS if self.tier_weights.get(t, 0) > 0]

    def repetitions(self, tier: str) -> int:
        return 1 if self.token_budget is None else self.max_repetitions.get(tier, 1)


def default_spec(stage: str, token_budget: int | None = None, seed: int = 0) -> StageSpec:
    """The paper's tier -> stage mapping; ``token_budget`` None keeps the stage default.

    The scarce upper tiers may repeat twice (cheap against unique data, Muennighoff
    et al. 2023); the bulk tier never repeats.
    """
    budget = DEFAULT_TOKEN_BUDGETS[stage] if token_budget is None else token_budget
    if stage == "pretrain":
        return StageSpec("pretrain", {"L1": 0.4, "L2": 0.6}, budget, max_repetitions={"L2": 2}, seed=seed)
    if stage == "decay":
        return StageSpec(
            "decay", {"L2": 0.5, "L3": 0.5}, budget, max_repetitions={"L3": 2}, seed=seed, l2_top_fraction=0.3
        )
    if stage == "sft":
        return StageSpec(
            "sft",
            {"L3": 0.7, "L4": 0.3},
            budget,
            seed=seed,
            l3_formats=("qa", "dialogue"),
            record_format="chat",
        )
    if stage == "rag":
        return StageSpec("rag", {"L4": 1.0}, budget, seed=seed, record_format="item", index_path="index/l4")
    raise ValueError(f"unknown stage {stage!r}; one of {STAGES}")


def estimate_tokens(n_chars: int, domain: str) -> int:
    """Tokens of a document, rounded up so a budget is never exceeded by the estimate."""
    return math.ceil(n_chars / CHARS_PER_TOKEN.get(domain, DEFAULT_CHARS_PER_TOKEN))
