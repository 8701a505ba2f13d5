"""L4 settings: extraction, verification and organization of one partition, validated up front."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tier_assets.curation.settings import build_config, domain_settings
from tier_assets.curation.validation import (
    check_at_least_one,
    check_cosine,
    check_fraction,
    check_ngram_guard,
    check_non_negative,
    check_order,
)


@dataclass(frozen=True)
class L4Settings:
    """Everything an L4 run depends on; invalid values raise ``ValueError`` before any work.

    Extraction: rule-based (always cheap) and LLM (paid from ``budget_tokens``,
    which also pays the entailment judge; ``max_new_tokens`` is capped by what is
    left, and each extraction call keeps ``judge_reserve_tokens`` back for judging
    its claims; ``no_repeat_ngram`` is the local decoding loop guard, as in L3).
    Knowledge checks: an item longer than ``max_item_chars`` is rejected
    (``l4_check:too_long``), as is one failing any rule of ``checks.py``. With
    ``knowledge_judge``, an item the rules pass is read once by the LLM (paid from
    ``budget_tokens``) and rejected as ``l4_check:not_knowledge`` when the calibrated
    combiner of its margin and rule features (``judge.py``) is below ``min_knowledge``;
    off by default: on the dev set it adds 0.02 precision on the report split and costs
    recall on the tune split (docs/l4-labelling.md). With ``knowledge_scorer``, an item the rules pass
    is scored by the knowledge scorer (``scorer.py``: the embedder's vector and structural features,
    free of the budget) and rejected as ``l4_check:not_knowledge_scorer`` below ``min_knowledge_score``;
    on for en only, where it raises cross-validated tune precision (zh is never scored).
    Verification: an item's key terms must cover ``min_term_coverage`` of its evidence span, and an LLM item's calibrated entailment P(Yes) must reach
    ``min_entailment``. Organization: items of one kind whose embeddings have
    cosine >= ``merge_threshold`` are one item; the topic is the nearest topic
    label, or "other" below ``topic_min_similarity``. Consistency (``consistency.py``):
    items the rules find contradictory are linked and the less supported one rejected
    (``l4_conflict``; a tie rejects both); with ``conflict_judge`` the LLM is also asked
    about same-subject pairs and embedding neighbours (cosine >= ``conflict_neighbour``)
    the rules cannot tell, P(No) >= ``min_contradiction`` being a conflict (paid from the budget).
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
    no_repeat_ngram: int = 6
    max_items_per_doc: int = 20
    min_sentence_chars: int = 25
    max_sentence_chars: int = 400
    max_item_chars: int = 600
    knowledge_judge: bool = False
    min_knowledge: float = 0.8
    knowledge_scorer: bool = False
    min_knowledge_score: float = 0.35
    min_term_coverage: float = 0.6
    judge: bool = True
    judge_calibrated: bool = True
    min_entailment: float = 0.5
    merge_threshold: float = 0.9
    conflict_judge: bool = False
    conflict_neighbour: float = 0.8
    min_contradiction: float = 0.9
    topic_min_similarity: float = 0.15
    records_per_batch: int | None = None

    def __post_init__(self) -> None:
        check_non_negative(self, "budget_tokens", "judge_reserve_tokens", "temperature")
        check_non_negative(self, "max_llm_docs", optional=True)
        check_at_least_one(self, "min_new_tokens", "max_source_chars", "batch_size", "max_items_per_doc",
                           "min_sentence_chars")
        check_ngram_guard(self, "no_repeat_ngram")
        check_order(self, "min_new_tokens", "max_new_tokens")
        check_order(self, "min_sentence_chars", "max_sentence_chars")
        check_at_least_one(self, "max_item_chars")
        check_at_least_one(self, "records_per_batch", integer=True, optional=True)
        check_fraction(self, "min_term_coverage", "min_entailment", "min_knowledge", "min_contradiction",
                       "min_knowledge_score")
        check_cosine(self, "merge_threshold", "topic_min_similarity", "conflict_neighbour")


def load_l4_settings(domain: str, overrides: dict[str, Any] | None = None) -> L4Settings:
    """``recipes/l4.yaml`` (defaults, then the domain) plus ``overrides``, validated before any work."""
    return build_config(L4Settings, "L4 settings", domain_settings("l4", domain, overrides))
