"""LLM annotation of seed documents: a graded 0-5 judgement, and the seed label built from it.

The judge's score is the expected value of the digit the model would answer,
E[s] = sum_s s * P(s) / sum_s P(s) over the tokens "0".."5", so even a small
model gives a graded signal and no text is parsed. Only when the backend gives
no log-probs, or the digits get almost no probability mass, is an answer
generated and parsed; an answer that still yields no score (refusal, malformed)
is recorded as unscored with the reason, never as 0.

The seed label follows a ``LabelRule``. With a capable judge (any model but the
embedded default) the label is the judge's score: the paper's method. The
embedded SmolLM2-135M is a poor judge on its own (its 0-5 score selects at
random against human labels), so its default label rule for web text is a
calibrated ensemble: a logistic combination of the LLM's Yes/No judgement, its
perplexity of the text and the cheap text statistics (``textstats``: length,
stop-word share, alphabetic-word share, line structure...), mapped to 0-5 so
that 3 means P(good) = 0.5. The weights were fit on quality-dev
(``select_label_rule``: ``calibrate_label_rule`` with its penalty cross-validated; see ``SMALL_MODEL_WEB``);
the 0-5 judgement is still computed and recorded with every seed.

Text that addresses the judge is removed before the model reads it
(``injection.neutralize``), and a document that contained some loses
``injection_penalty`` points: gaming the judge must never pay. Generic rating
notation ("Rating: 4/5", "★★★★★") is removed without the penalty (see ``injection``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tier_assets.curation.l2 import prompts
from tier_assets.curation.l2.textstats import text_stats
from tier_assets.curation.logistic import fit_logistic
from tier_assets.curation.models.llm import (
    DEFAULT_LLM_ID,
    LLM,
    LLMError,
    LLMUnsupported,
    load_llm,
    refusal_reason,
)


@dataclass(frozen=True)
class LabelRule:
    """How a seed's label is made from its signals (recorded under the name ``recipe`` in cards and caches).

    ``weights`` maps signal names to logistic weights on standardized signals
    ((x - center) / scale); the label is ``5 * sigmoid(bias + sum)``. An empty
    ``weights`` means the label is the judge's 0-5 score itself.
    """

    name: str
    weights: dict[str, float] = field(default_factory=dict)
    center: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    bias: float = 0.0

    @property
    def llm_signals(self) -> set[str]:
        return {k for k in self.weights if k in LLM_SIGNALS}

    def label(self, signals: dict[str, float]) -> float:
        if not self.weights:
            return signals["judge_score"]
        z = self.bias + sum(w * (signals[k] - self.center[k]) / self.scale[k] for k, w in self.weights.items())
        return 5.0 / (1.0 + math.exp(-z))


LLM_SIGNALS = ("judge_score", "yes_no", "neg_log_ppl")
# The label's decision line: calibrated P(good) = 0.5 maps to 3 on the 0-5 scale (FineWeb-Edu's keep line).
LABEL_OFFSET = math.log(1.5)


def calibrate_label_rule(signals: Sequence[dict[str, float]], labels: Sequence[int], keys: Sequence[str], name: str,
                         c: float = 0.3, iterations: int = 50) -> LabelRule:
    """Fit an ensemble label rule to human 0/1 labels: L2-penalized logistic regression (Newton steps).

    ``c`` is the inverse penalty (as scikit-learn's ``C``). The bias is shifted by
    ``LABEL_OFFSET`` so that a label of 3 means a calibrated P(good) of 0.5.
    """
    weights, center, scale, bias = fit_logistic(signals, labels, keys, c, iterations)
    return LabelRule(name, weights=weights, center=center, scale=scale, bias=round(bias + LABEL_OFFSET, 6))


LABEL_RULE_C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def select_label_rule(signals: Sequence[dict[str, float]], labels: Sequence[int], keys: Sequence[str], name: str,
                      cs: Sequence[float] = LABEL_RULE_C_GRID, folds: int = 5,
                      seed: int = 0) -> tuple[LabelRule, float]:
    """``calibrate_label_rule`` with ``c`` picked by ``folds``-fold cross-validated log-loss: (rule, c).

    The penalty is chosen on held-out likelihood, not on a ranking metric, and
    the rule is then refit on all of ``signals`` with it.
    """
    y = np.asarray(labels, dtype=np.float64)
    fold_of = np.random.default_rng(seed).permutation(np.arange(len(y)) % folds)
    losses = []
    for c in cs:
        loss = 0.0
        for k in range(folds):
            train, test = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
            rule = calibrate_label_rule([signals[i] for i in train], y[train], keys, name, c=c)
            for i in test:
                z = rule.bias - LABEL_OFFSET + sum(w * (signals[i][k] - rule.center[k]) / rule.scale[k]
                                                   for k, w in rule.weights.items())
                loss += math.log1p(math.exp(-z)) if y[i] else math.log1p(math.exp(z))  # -log P(label)
        losses.append(loss)
    best = cs[int(np.argmin(losses))]
    return calibrate_label_rule(signals, labels, keys, name, c=best), best


JUDGE = LabelRule("judge")
# Fit with ``select_label_rule`` (c = 0.1 picked by 5-fold cross-validated log-loss from LABEL_RULE_C_GRID) on
# quality-dev (218 DCLM human labels; never the holdout) from the signals of SmolLM2-135M-Instruct Q4_1 under
# PROMPT_VERSION l2-2025.1; refit when either changes (``bench/l2_scoring.py --fit-recipe`` prints it). The
# signals are the LLM's Yes/No margin and -log perplexity plus every text statistic but ``cjk_frac``
# (constant in English): the distilled classifier reproduces the statistic terms exactly
# (``distill.rule_part``), so only the LLM's part is lost in distillation. The 0-5 judgement is left out:
# on dev it carries no information once the others are known (AUC 0.50 alone).
SMALL_MODEL_WEB = LabelRule(
    "smollm2-ensemble-web-v2",
    weights={"yes_no": 0.498415, "neg_log_ppl": 0.244655, "log_chars": 0.077671, "log_words": 0.043546,
             "mean_word_len": 0.387894, "alpha_frac": 0.260306, "stop_frac": 0.309135, "end_punct_frac": -0.079149,
             "bullet_frac": -0.142748, "short_line_frac": -0.252845, "log_mean_line": -0.107116,
             "unique_word_frac": -0.141121, "upper_frac": -0.273976, "digit_frac": 0.020788,
             "symbol_frac": -0.057025},
    center={"yes_no": 0.345907, "neg_log_ppl": -3.694096, "log_chars": 7.274877, "log_words": 5.496652,
            "mean_word_len": 4.978843, "alpha_frac": 0.960195, "stop_frac": 0.349215, "end_punct_frac": 0.550348,
            "bullet_frac": 0.116085, "short_line_frac": 0.283773, "log_mean_line": 4.968824,
            "unique_word_frac": 0.62037, "upper_frac": 0.04422, "digit_frac": 0.014332, "symbol_frac": 0.002439},
    scale={"yes_no": 0.401243, "neg_log_ppl": 0.523586, "log_chars": 0.881919, "log_words": 0.886993,
           "mean_word_len": 0.542559, "alpha_frac": 0.033997, "stop_frac": 0.070691, "end_punct_frac": 0.293074,
           "bullet_frac": 0.220467, "short_line_frac": 0.227388, "log_mean_line": 0.646978,
           "unique_word_frac": 0.125479, "upper_frac": 0.02037, "digit_frac": 0.014051, "symbol_frac": 0.005757},
    bias=0.645071,
)
SMALL_MODEL_WEB_KEYS = tuple(SMALL_MODEL_WEB.weights)
LABEL_RULES = {r.name: r for r in (JUDGE, SMALL_MODEL_WEB)}


def default_label_rule(model_id: str, domain: str) -> LabelRule:
    """The embedded small model gets the calibrated ensemble for web text; anything else is judged directly."""
    if model_id == DEFAULT_LLM_ID and domain in ("en", "zh"):
        return SMALL_MODEL_WEB
    return JUDGE


REFUSAL = re.compile(r"\b(?:I(?:'m| am) sorry|I can(?:no|')t|I cannot|I(?:'m| am) (?:not able|unable)|"
                     r"as an AI|I won't|I will not)\b", re.IGNORECASE)
SCORE_IN_TEXT = (
    re.compile(r"(?:score|rating|grade)\s*(?:is|of|:|=)?\s*\**([0-5](?:\.\d+)?)\b", re.IGNORECASE),
    re.compile(r"\b([0-5](?:\.\d+)?)\s*(?:/|out of)\s*5\b", re.IGNORECASE),
    re.compile(r"^\W*([0-5])(?:\.\d+)?\W*$"),
    re.compile(r"^\W*([0-5])\b"),
)


def parse_score(text: str) -> tuple[float | None, str | None]:
    """A 0-5 score written in generated text, else (None, "refused" | "malformed: ...")."""
    stripped = text.strip()
    if not stripped:
        return None, "malformed: empty answer"
    for pattern in SCORE_IN_TEXT:
        m = pattern.search(stripped)
        if m:
            return float(m.group(1)), None
    if REFUSAL.search(stripped):
        return None, "refused"
    return None, f"malformed: no 0-5 score in {stripped[:60]!r}"


def expected_score(logprobs: dict[str, float]) -> tuple[float, float]:
    """(expected digit under the renormalized digit probabilities, total digit mass)."""
    probs = np.array([math.exp(logprobs[t]) for t in prompts.SCORE_TOKENS])
    mass = float(probs.sum())
    if mass <= 0:
        return math.nan, 0.0
    return float(probs @ np.arange(len(probs)) / mass), mass


@dataclass
class Annotation:
    """One document's annotation; ``score`` is the seed label (None = unscored, see ``reason``)."""

    score: float | None
    judge_score: float | None
    method: str | None  # "logprobs" | "generation" | None
    reason: str | None
    signals: dict[str, float]
    tags: list[str]
    injections: int
    model_id: str
    backend: str
    prompt_version: str
    recipe: str  # the label rule's name; the serialized field keeps its name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Annotator:
    """Annotates documents of one domain with one LLM and one label rule.

    ``with_tags`` (default: on for any model but the embedded 135M one, whose
    tags are noise) adds one short generation per document. ``perplexity_llm``
    supplies perplexity when the judge cannot (an endpoint without echo
    log-probs); by default that is the embedded local model.
    """

    def __init__(self, llm: LLM | None = None, domain: str = "en", label_rule: LabelRule | str | None = None,
                 max_chars: int = 1200, min_mass: float = 0.05, injection_penalty: float = 1.0,
                 with_tags: bool | None = None, fallback_max_tokens: int = 16, perplexity_llm: LLM | None = None):
        self.llm = llm or load_llm()
        self.domain = domain
        if isinstance(label_rule, str):
            label_rule = LABEL_RULES[label_rule]
        self.label_rule = label_rule or default_label_rule(self.llm.model_id, domain)
        self.max_chars = max_chars
        self.min_mass = min_mass
        self.injection_penalty = injection_penalty
        self.with_tags = self.llm.model_id != DEFAULT_LLM_ID if with_tags is None else with_tags
        self.fallback_max_tokens = fallback_max_tokens
        self._perplexity_llm = perplexity_llm

    @property
    def identity(self) -> dict[str, str]:
        """What the classifier version and every score record about the annotator."""
        return {"model_id": self.llm.model_id, "backend": self.llm.backend, "recipe": self.label_rule.name,
                "prompt_version": prompts.PROMPT_VERSION}

    def judge(self, texts: Sequence[str]) -> list[tuple[float | None, str | None, str | None]]:
        """The LLM's own 0-5 judgement per text: (score, method, reason-if-unscored).

        Judge-addressing sentences are removed first; the penalty for them is
        applied to the label (``annotate``), not by the judge.
        """
        return self._judge([prompts.neutralize(t)[0] for t in texts])

    def _judge(self, texts: Sequence[str]) -> list[tuple[float | None, str | None, str | None]]:
        msgs = [prompts.score_prompt(self.domain, t, self.max_chars) for t in texts]
        out: list[tuple[float | None, str | None, str | None]] = [(None, None, None)] * len(texts)
        retry: list[int] = []
        try:
            for i, lps in enumerate(self.llm.next_token_logprobs(msgs, prompts.SCORE_TOKENS)):
                score, mass = expected_score(lps)
                if mass >= self.min_mass:
                    out[i] = (score, "logprobs", None)
                else:
                    retry.append(i)
        except LLMUnsupported:
            retry = list(range(len(texts)))
        if retry:
            gens = self.llm.generate([msgs[i] for i in retry], self.fallback_max_tokens, 0.0)
            for i, gen in zip(retry, gens, strict=True):
                refused = refusal_reason(gen)  # the LLM prompt guard found L1 content terms in the prompt
                score, why = (None, refused) if refused else parse_score(gen.text)
                out[i] = (score, "generation", why) if score is not None else (None, None, why)
        return out

    def llm_signals(self, texts: Sequence[str]) -> dict[str, list[float]]:
        """The LLM signals the label rule needs besides the judge (Yes/No margin, -log perplexity)."""
        found: dict[str, list[float]] = {}
        if "yes_no" in self.label_rule.llm_signals:
            lps = self.llm.next_token_logprobs([prompts.yes_no_prompt(self.domain, t, self.max_chars)
                                                for t in texts], prompts.YES_NO)
            found["yes_no"] = [d["Yes"] - d["No"] for d in lps]
        if "neg_log_ppl" in self.label_rule.llm_signals:
            try:
                ppl = self.llm.perplexity(texts)
            except LLMUnsupported:
                self._perplexity_llm = self._perplexity_llm or load_llm()
                ppl = self._perplexity_llm.perplexity(texts)
            found["neg_log_ppl"] = [-math.log(p) for p in ppl]
        return found

    def tags(self, texts: Sequence[str]) -> list[list[str]]:
        """Tags from the domain's vocabulary named in a short generated answer."""
        vocab = prompts.domain_prompt(self.domain).tags
        gens = self.llm.generate([prompts.tags_prompt(self.domain, t, self.max_chars) for t in texts], 24, 0.0)
        return [[t for t in vocab if re.search(rf"\b{re.escape(t)}\b", g.text, re.IGNORECASE)] for g in gens]

    def annotate(self, texts: Sequence[str]) -> list[Annotation]:
        """Annotations of ``texts`` in order; failures are unscored with a reason, never 0."""
        cleaned, injections = zip(*(prompts.neutralize(t) for t in texts), strict=True) if texts else ((), ())
        live = [i for i, t in enumerate(cleaned) if t.strip()]
        base = self.identity
        results = [Annotation(None, None, None, "empty document", {}, [], injections[i], base["model_id"],
                              base["backend"], prompts.PROMPT_VERSION, self.label_rule.name) for i in range(len(texts))]
        if not live:
            return results
        docs = [cleaned[i] for i in live]
        try:
            judged = self._judge(docs)
            extra = self.llm_signals(docs)
            tags = self.tags(docs) if self.with_tags else [[] for _ in docs]
        except LLMError as err:
            for i in live:
                results[i].reason = f"llm error: {err}"[:300]
            return results
        for k, i in enumerate(live):
            ann = results[i]
            ann.judge_score, ann.method, ann.reason = judged[k]
            ann.tags = tags[k]
            ann.signals = {**text_stats(docs[k]), **{name: values[k] for name, values in extra.items()}}
            if ann.judge_score is None:
                continue
            ann.signals["judge_score"] = ann.judge_score
            label = self.label_rule.label(ann.signals)
            if ann.injections:
                label = max(0.0, label - self.injection_penalty)
                ann.tags.append("judge_injection")
            ann.score = round(label, 4)
        return results
