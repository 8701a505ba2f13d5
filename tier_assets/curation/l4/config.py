"""L4 settings: extraction, verification and organization of one partition, validated up front."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class L4Config:
    """Everything an L4 run depends on; invalid values raise ``ValueError`` before any work.

    Extraction: rule-based (always cheap) and LLM (paid from ``budget_tokens``,
    which also pays the entailment judge; ``max_new_tokens`` is capped by what is
    left, and each extraction call keeps ``judge_reserve_tokens`` back for judging
    its claims). Verification: an item's key terms must cover ``min_term_coverage`` of
    its evidence span, and an LLM item's calibrated entailment P(Yes) must reach
    ``min_entailment``. Organization: items of one kind whose embeddings have
    cosine >= ``merge_threshold`` are one item; the topic is the nearest topic
    label, or "other" below ``topic_min_similarity``.
    """

    rule_extraction: bool = True
    llm_extraction: bool = True
    budget_tokens: int = 10_000
    max_llm_docs: int | None = None
    max_source_chars: int = 1200
    max_new_tokens: int = 160
    min_new_tokens: int = 24
    judge_reserve_tokens: int = 800
    batch_size: int = 4
    temperature: float = 0.0
    max_items_per_doc: int = 20
    min_sentence_chars: int = 25
    max_sentence_chars: int = 400
    min_term_coverage: float = 0.6
    judge: bool = True
    judge_calibrated: bool = True
    min_entailment: float = 0.5
    merge_threshold: float = 0.9
    topic_min_similarity: float = 0.15

    def __post_init__(self) -> None:
        if self.budget_tokens < 0:
            raise ValueError(f"budget_tokens must be >= 0, got {self.budget_tokens}")
        if self.max_llm_docs is not None and self.max_llm_docs < 0:
            raise ValueError(f"max_llm_docs must be >= 0 or None, got {self.max_llm_docs}")
        if not 1 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError("need 1 <= min_new_tokens <= max_new_tokens")
        if self.judge_reserve_tokens < 0:
            raise ValueError(f"judge_reserve_tokens must be >= 0, got {self.judge_reserve_tokens}")
        if self.max_source_chars < 1 or self.batch_size < 1 or self.max_items_per_doc < 1:
            raise ValueError("max_source_chars, batch_size and max_items_per_doc must be >= 1")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 1 <= self.min_sentence_chars <= self.max_sentence_chars:
            raise ValueError("need 1 <= min_sentence_chars <= max_sentence_chars")
        for name in ("min_term_coverage", "min_entailment"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("merge_threshold", "topic_min_similarity"):
            if not -1 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a cosine similarity in [-1, 1], got {getattr(self, name)}")
