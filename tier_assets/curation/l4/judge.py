"""L4 knowledge judge: "is this a self-contained, reliable factual statement?", from token probabilities.

The rules (``checks.py``) reject first and cost nothing. An item they pass is
then read by the LLM once: the judge's margin is log P(Yes) - log P(No) of the
answer's first token (one forward pass, no text generated or parsed; cached
and paid from the L4 budget like the entailment judge). The embedded 135M
model is not trusted alone: the margin enters a small logistic combiner with
cheap rule features (``features``), fit on the dev set's ``tune`` split only
(``fit_combiner``; ``bench/l4_knowledge.py fit`` prints the constants), and the
item is kept when the combiner's P(knowledge) reaches ``min_knowledge``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tier_assets.curation import llm_cache
from tier_assets.curation.l3.budget import TokenBudget
from tier_assets.curation.l3.verify import judge_cost
from tier_assets.curation.l4.extract import Item
from tier_assets.curation.llm_cache import LLMCache, Request
from tier_assets.curation.logistic import fit_logistic
from tier_assets.curation.models.llm import LLM, Message
from tier_assets.curation.schema import HAN

KNOWLEDGE_PROMPT_VERSION = "l4-knowledge-2026.1"  # bump when knowledge_prompt changes
KNOWLEDGE_TASK = "l4:knowledge"
NOT_KNOWLEDGE = "l4_check:not_knowledge"
_SYSTEM = ("You review entries for an encyclopedia. A good entry is a complete, self-contained factual statement "
           "about a named subject: no opinion, no advertising, no fragment, nothing that needs the page around it.")
_MAX_CHARS = 700


def knowledge_prompt(text: str) -> list[Message]:
    """Asks whether ``text`` could stand in a reference work as it is; answered by one token, Yes or No."""
    return [{"role": "system", "content": _SYSTEM},
            {"role": "user", "content": f"Entry: {text[:_MAX_CHARS]}\nIs this a self-contained, reliable factual "
                                        "statement? Answer Yes or No."}]


def knowledge_margins(llm: LLM, texts: Sequence[str], cache: LLMCache | None = None,
                      doc_ids: Sequence[str | None] | None = None,
                      budget: TokenBudget | None = None) -> list[float | None]:
    """log P(Yes) - log P(No) per text (clipped to +-20 when one side is unseen; NaN when neither is seen);
    None where ``budget`` could not pay. Answers already paid for are read from ``cache``."""
    ids = list(doc_ids) if doc_ids is not None else [None] * len(texts)
    requests = [Request(doc_id, KNOWLEDGE_TASK, knowledge_prompt(t)) for doc_id, t in zip(ids, texts, strict=True)]
    answers = paid_yes_no(llm, cache, requests, KNOWLEDGE_PROMPT_VERSION, budget, "knowledge")
    return [None if lp is None else math.nan if lp["Yes"] == lp["No"] == -math.inf
            else max(-20.0, min(20.0, lp["Yes"] - lp["No"])) for lp in answers]


def paid_yes_no(llm: LLM, cache: LLMCache | None, requests: Sequence[Request], prompt_version: str,
                budget: TokenBudget | None, kind: str) -> list[dict[str, float] | None]:
    """log P(Yes) and log P(No) per request, each paid from ``budget`` under ``kind`` first (a one-token
    judgement costs exactly its reservation); None where the budget could not pay. Cached answers are reused."""
    paid: list[int] = []
    for i, request in enumerate(requests):
        cost = judge_cost(llm, request.prompt)
        if budget is None or budget.reserve(cost):
            paid.append(i)
            if budget is not None:
                budget.settle(cost, cost, kind)
    answers = llm_cache.next_token_logprobs(llm, cache, [requests[i] for i in paid], ["Yes", "No"],
                                            prompt_version) if paid else []
    out: list[dict[str, float] | None] = [None] * len(requests)
    for i, lp in zip(paid, answers, strict=True):
        out[i] = lp
    return out


_DIGIT = re.compile(r"\d")


def features(text: str, kind: str, margin: float) -> dict[str, float]:
    """What the combiner reads: the judge's margin and cheap facts of the text (length, digits, a Q&A, Chinese)."""
    return {"margin": margin, "log_chars": math.log(len(text) + 1), "has_digit": float(bool(_DIGIT.search(text))),
            "qa": float(kind == "qa"), "han": float(bool(HAN.search(text)))}


@dataclass(frozen=True)
class Combiner:
    """A logistic model on standardized features: P(knowledge) = sigmoid(bias + sum w_k (x_k - center_k) / scale_k)."""

    weights: dict[str, float] = field(default_factory=dict)
    center: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    bias: float = 0.0

    def probability(self, feats: Mapping[str, float]) -> float:
        z = self.bias + sum(w * (feats[k] - self.center[k]) / self.scale[k] for k, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-z))


def fit_combiner(rows: Sequence[Mapping[str, float]], labels: Sequence[int], keys: Sequence[str],
                 c: float = 1.0, iterations: int = 50) -> Combiner:
    """L2-penalized logistic regression (Newton steps, ``c`` the inverse penalty) on ``keys`` of ``rows``."""
    weights, center, scale, bias = fit_logistic(rows, labels, keys, c, iterations)
    return Combiner(weights, center, scale, round(bias, 6))


COMBINER_KEYS = ("margin", "log_chars", "has_digit", "han")
# Fit by ``bench/l4_knowledge.py fit`` on the tune split's items that pass the rules (never the report split or
# the holdout), from SmolLM2-135M-Instruct Q4_1 under KNOWLEDGE_PROMPT_VERSION; refit when either changes.
# Tune precision at MIN_KNOWLEDGE 0.88 (recall 0.85); the rules alone reach 0.88 / 0.94 there: see docs/l4-labelling.md.
COMBINER = Combiner(weights={"margin": 0.277471, "log_chars": 0.232284, "has_digit": -0.334569, "han": 0.367777},
                    center={"margin": -0.336439, "log_chars": 4.739746, "has_digit": 0.327586, "han": 0.034483},
                    scale={"margin": 0.440103, "log_chars": 0.626074, "has_digit": 0.469333, "han": 0.182466},
                    bias=2.080595)
MIN_KNOWLEDGE = 0.8
# The judge alone (Platt scaling of its margin on every tune row): what the 135M model says without the rules.
JUDGE_ONLY = Combiner(weights={"margin": 0.553131}, center={"margin": -0.441198}, scale={"margin": 0.457817},
                      bias=-0.143887)


def knowledge_probability(text: str, kind: str, margin: float, combiner: Combiner = COMBINER) -> float | None:
    """The combiner's P(knowledge) of one item that passed the rules; None when the judge saw neither answer."""
    if math.isnan(margin):
        return None
    return combiner.probability(features(text, kind, margin))


def judge_knowledge(items: Sequence[Item], llm: LLM, min_knowledge: float, budget: TokenBudget | None = None,
                    cache: LLMCache | None = None) -> tuple[list[Item], list[tuple[Item, str, str]]]:
    """(kept items, [(item, reason, detail)]) for items that passed the rules; the judge's margin and the
    combiner's P(knowledge) land in ``item.verification``. An item the budget cannot pay for is rejected
    (``budget_exhausted``); one the judge saw neither answer for keeps the rules' verdict."""
    margins = knowledge_margins(llm, [i.text for i in items], cache, [i.doc_id for i in items], budget)
    kept: list[Item] = []
    failed: list[tuple[Item, str, str]] = []
    for item, margin in zip(items, margins, strict=True):
        if margin is None:
            failed.append((item, "budget_exhausted", "no budget left for the knowledge judge"))
            continue
        p = knowledge_probability(item.text, item.kind, margin)
        item.verification.update(knowledge_margin=None if math.isnan(margin) else round(margin, 4),
                                 knowledge=None if p is None else round(p, 4), min_knowledge=min_knowledge)
        if p is not None and p < min_knowledge:
            failed.append((item, NOT_KNOWLEDGE, f"P(knowledge) {p:.3f} < {min_knowledge} (judge margin "
                                                f"{margin:+.2f}, combined with the rule features)"))
        else:
            kept.append(item)
    return kept, failed
