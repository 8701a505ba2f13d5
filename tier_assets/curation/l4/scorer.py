"""L4 knowledge scorer: a logistic model that reads what the rules cannot list (vague blurbs, news context).

The knowledge checks (``checks.py``) reject what a word or a pattern shows; what passes them
still holds blurbs and page-bound claims that share no word. The scorer is a regularised
logistic regression (``curation/logistic.py``) over the MiniLM sentence embedding (384
dimensions) and a few structural features (length, a genus-differentia shape, "is the",
a named subject, parentheses, quotes, digits, domain), fit on the dev set's **tune** split
only (``python bench/l4_knowledge.py fit-scorer``); its weights ship as
``knowledge_scorer.json`` next to this module. An item is kept when the rules pass it and
its probability reaches ``min_knowledge_score`` (``L4Settings``; per domain in ``recipes/l4.yaml``).

The embedder is English: Chinese items get no score (``None``) and are judged by the rules
alone. Which domains use it, and at which threshold, is decided by cross-validation on tune
(``bench/l4_knowledge.py scorer-domains``; ``docs/l4-labelling.md``): en only today.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tier_assets.curation.l4.extract import Item
from tier_assets.curation.logistic import fit_logistic

NOT_KNOWLEDGE_SCORER = "l4_check:not_knowledge_scorer"
WEIGHTS = Path(__file__).with_name("knowledge_scorer.json")
EMBEDDING_DIM = 384
STRUCTURE_KEYS = ("log_len", "genus", "is_the", "named", "one_word", "starts_the", "commas", "digits", "paren",
                  "quote", "code", "math")
KEYS = STRUCTURE_KEYS + tuple(f"e{j}" for j in range(EMBEDDING_DIM))
# "X is a <noun> that / which / of / used ...": a genus and what sets the subject apart in it
_GENUS = re.compile(r"\b(?:is|are|refers? to|means)\s+(?:a|an|any)\s+(?:[\w-]+\s+){0,4}?(?:that|which|who|wherein|"
                    r"in which|whose|of|for|used|in|on|with|from|by|between|where|made|consisting|containing|"
                    r"designed|caused|characteri[sz]ed)\b")
_IS_THE = re.compile(r"^(?:The\s+)?[^,]{1,80}?\s+(?:is|are)\s+the\b")


class Encoder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray: ...


def structure(text: str, domain: str, subject: str | None) -> dict[str, float]:
    """The structural features of one item (``STRUCTURE_KEYS``)."""
    words = (subject or "").split()
    named = bool(words) and (any(w[:1].isupper() for w in words[1:]) or any(c.isdigit() for c in subject or "")
                             or (bool(subject) and subject.isupper() and len(subject) > 1))
    return {"log_len": math.log(max(len(text), 1)), "genus": float(bool(_GENUS.search(text))),
            "is_the": float(bool(_IS_THE.match(text))), "named": float(named), "one_word": float(len(words) == 1),
            "starts_the": float(text.startswith("The ")), "commas": text.count(",") / max(1, len(text.split())),
            "digits": float(bool(re.search(r"\d", text))), "paren": float("(" in text),
            "quote": float(bool(re.search(r"[\"“”]", text))), "code": float(domain == "code"),
            "math": float(domain == "math")}


def feature_rows(texts: Sequence[str], domains: Sequence[str], subjects: Sequence[str | None],
                 vectors: np.ndarray) -> list[dict[str, float]]:
    """One feature dict (``KEYS``) per item: its structure and its embedding."""
    return [{**structure(t, d, s), **{f"e{j}": float(v[j]) for j in range(EMBEDDING_DIM)}}
            for t, d, s, v in zip(texts, domains, subjects, vectors, strict=True)]


@dataclass(frozen=True)
class KnowledgeScorer:
    """Fitted weights over standardized ``KEYS``, the bias, the keep threshold and how they were chosen."""

    weights: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    bias: float
    threshold: float
    fit: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path = WEIGHTS) -> KnowledgeScorer:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data["keys"] != list(KEYS):
            raise ValueError(f"{path}: features {data['keys'][:3]}... do not match this scorer's")
        return cls(np.array(data["weights"]), np.array(data["center"]), np.array(data["scale"]), data["bias"],
                   data["threshold"], data["fit"])

    def save(self, path: str | Path = WEIGHTS) -> None:
        Path(path).write_text(json.dumps({
            "keys": list(KEYS), "weights": [round(float(w), 6) for w in self.weights],
            "center": [round(float(c), 6) for c in self.center], "scale": [round(float(s), 6) for s in self.scale],
            "bias": round(self.bias, 6), "threshold": self.threshold, "fit": self.fit}) + "\n", encoding="utf-8")

    def probabilities(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        x = np.array([[r[k] for k in KEYS] for r in rows], dtype=np.float64).reshape(len(rows), len(KEYS))
        return 1.0 / (1.0 + np.exp(-(((x - self.center) / self.scale) @ self.weights + self.bias)))

    def score(self, texts: Sequence[str], domains: Sequence[str], subjects: Sequence[str | None],
              embedder: Encoder) -> list[float | None]:
        """P(knowledge) per item; ``None`` for zh (the embedder is English: the rules alone judge those)."""
        scored = [i for i, d in enumerate(domains) if d != "zh"]
        out: list[float | None] = [None] * len(texts)
        if scored:
            vectors = embedder.encode([texts[i] for i in scored])
            rows = feature_rows([texts[i] for i in scored], [domains[i] for i in scored],
                                [subjects[i] for i in scored], vectors)
            for i, p in zip(scored, self.probabilities(rows), strict=True):
                out[i] = round(float(p), 4)
        return out


def fit_scorer(rows: Sequence[dict[str, float]], labels: Sequence[int], c: float, threshold: float,
               fit: dict[str, Any]) -> KnowledgeScorer:
    """A scorer fit on feature ``rows`` (``feature_rows``) and their 0/1 labels with inverse penalty ``c``."""
    weights, center, scale, bias = fit_logistic(rows, labels, KEYS, c)
    return KnowledgeScorer(np.array([weights[k] for k in KEYS]), np.array([center[k] for k in KEYS]),
                           np.array([scale[k] or 1.0 for k in KEYS]), round(bias, 6), threshold, fit)


def screen_with_scorer(items: Sequence[Item], scorer: KnowledgeScorer, embedder: Encoder, min_score: float
                       ) -> tuple[list[Item], list[tuple[Item, str, str]]]:
    """(kept items, [(item, ``NOT_KNOWLEDGE_SCORER``, detail)]) for items the rules passed; the score lands in
    ``item.verification["knowledge_score"]`` (None for zh: the rules' verdict stands)."""
    if not items:
        return [], []
    scores = scorer.score([i.text for i in items], [i.domain for i in items], [i.subject for i in items], embedder)
    kept: list[Item] = []
    failed: list[tuple[Item, str, str]] = []
    for item, p in zip(items, scores, strict=True):
        item.verification.update(knowledge_score=p, min_knowledge_score=min_score)
        if p is not None and p < min_score:
            failed.append((item, NOT_KNOWLEDGE_SCORER, f"knowledge scorer P {p:.3f} < {min_score}"))
        else:
            kept.append(item)
    return kept, failed
