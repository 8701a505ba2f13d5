"""Distil annotator labels into a light classifier over embeddings + cheap text statistics.

The LLM labels a few hundred seeds; the classifier must score every L1
document at embedding speed. Features are the MiniLM sentence embedding (what
the text is about and how it reads) concatenated with standardized text
statistics (length, stop-word share, line structure: signals an embedding of the
first 256 tokens cannot see). The model is ridge regression onto the label's
logit (label / 5), mapped back through a sigmoid: an ensemble label is a
sigmoid of a linear score, so its rule part stays exactly linear. The label rule's
terms on the classifier's own statistics are known exactly, so they are fixed
(``rule_part``), not re-learned under the penalty: the ridge fits only the
remainder, the LLM's part, which must be inferred from the text. The penalty
and the embedding block's weight against the statistics are picked by
closed-form leave-one-out error on the training split. With hundreds of seeds a
linear model is what the data supports; it trains in milliseconds and scores at
matrix-multiply speed.

A classifier is two files, ``weights.npz`` and ``card.json``; its ``version``
hashes the seed set (doc ids + text hashes), the annotator (model, backend,
label rule), the prompt version and the feature spec, so any change to what it
learned from gives a new version and makes L2 partitions scored by the old one stale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tier_assets.curation.atomic import atomic_path, write_json_atomic
from tier_assets.curation.l2.annotate import LABEL_RULES, LabelRule
from tier_assets.curation.l2.textstats import STAT_NAMES, stats_matrix
from tier_assets.curation.models.embedder import DEFAULT_EMBEDDER, get_embedder

ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
EMBEDDING_SCALES = (1.0, 2.0, 4.0, 8.0)  # embedding block weight vs unit-variance statistics
LABEL_CLIP = 0.01  # labels 0 and 5 map to finite logits
POSITIVE_AT = 3.0  # FineWeb-Edu's convention: a score >= 3 is "educational" / good


def rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean rank), 1-based."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve (Mann-Whitney); None when only one class is present."""
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return None
    r = rankdata(np.asarray(scores, dtype=np.float64))
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman rank correlation; None when either side is constant."""
    ra, rb = rankdata(np.asarray(a)), rankdata(np.asarray(b))
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass(frozen=True)
class Seed:
    """One annotated seed: the classifier's training example."""

    doc_id: str
    text: str
    label: float  # annotator score on 0-5
    source: str = "sample"  # "sample" (from L1) or "reference" (a positive by provenance)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def seed_set_hash(seeds: Sequence[Seed]) -> str:
    """Order-independent hash of the seed set: doc ids and text hashes."""
    h = hashlib.sha256()
    for doc_id, th in sorted((s.doc_id, text_hash(s.text)) for s in seeds):
        h.update(f"{doc_id}\x1f{th}\n".encode())
    return h.hexdigest()


def classifier_version(seeds_hash: str, annotator: dict[str, Any], prompt_version: str,
                       feature_spec: dict[str, Any]) -> str:
    """hash(seed set, annotator model/backend/label rule, prompt version, feature spec)."""
    payload = json.dumps({"seeds": seeds_hash, "annotator": annotator, "prompt_version": prompt_version,
                          "features": feature_spec}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def is_heldout(doc_id: str, fraction: float) -> bool:
    """A stable split: a seed stays on its side of the split when other seeds change."""
    bucket = int(hashlib.blake2b(doc_id.encode(), digest_size=4).hexdigest(), 16) / 2**32
    return bucket < fraction


def feature_spec(embedder: str = DEFAULT_EMBEDDER, stats: Sequence[str] = STAT_NAMES) -> dict[str, Any]:
    return {"embedder": embedder, "stats": list(stats)}


def featurize(texts: Sequence[str], spec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, raw statistics) of ``texts`` per ``spec``."""
    emb = get_embedder(None if spec["embedder"] == DEFAULT_EMBEDDER else spec["embedder"])
    return emb.encode(list(texts)), stats_matrix(list(texts), tuple(spec["stats"]))


def fit_ridge(x: np.ndarray, y: np.ndarray, alphas: Sequence[float] = ALPHAS) -> tuple[np.ndarray, float, float]:
    """Ridge regression (centered, intercept unpenalized), alpha by exact leave-one-out error.

    Returns (coef, intercept, leave-one-out mean squared error at the chosen alpha).
    """
    x_mean, y_mean = x.mean(0), y.mean()
    xc, yc = x - x_mean, y - y_mean
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    uty = u.T @ yc
    best: tuple[float, float] | None = None
    for alpha in alphas:
        shrink = s**2 / (s**2 + alpha)
        fitted = u @ (shrink * uty)
        leverage = (u**2 * shrink).sum(1) + 1.0 / len(y)
        loo = float(np.mean(((yc - fitted) / np.clip(1 - leverage, 1e-6, None)) ** 2))
        if best is None or loo < best[0]:
            best = (loo, alpha)
    assert best is not None
    coef = vt.T @ ((s / (s**2 + best[1])) * uty)
    return coef, float(y_mean - x_mean @ coef), best[0]


def rule_part(label_rule: LabelRule | None, stat_names: Sequence[str], mean: np.ndarray,
              std: np.ndarray) -> tuple[np.ndarray, float]:
    """The label rule's text-statistic terms as (coefficients on standardized stats, intercept).

    An ensemble label's logit is ``bias + sum_k w_k (x_k - center_k) / scale_k``; the
    terms whose signal is one of the classifier's own statistics are known exactly,
    so they are fixed rather than re-learned under the ridge penalty, and only the
    rest (the LLM's part) is regressed on the features.
    """
    coef, intercept = np.zeros(len(stat_names)), 0.0
    if label_rule is None:
        return coef, intercept
    for j, name in enumerate(stat_names):
        if name in label_rule.weights:
            w = label_rule.weights[name] / label_rule.scale[name]
            coef[j] = w * std[j]
            intercept += w * (mean[j] - label_rule.center[name])
    return coef, intercept


def to_logit(labels: np.ndarray) -> np.ndarray:
    p = np.clip(labels / 5.0, LABEL_CLIP, 1 - LABEL_CLIP)
    return np.log(p / (1 - p))


@dataclass
class QualityClassifier:
    """Embedding + statistics ridge regressor predicting the annotator's 0-5 score."""

    coef: np.ndarray
    intercept: float
    stats_mean: np.ndarray
    stats_std: np.ndarray
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.card["version"])

    def design(self, emb: np.ndarray, stats: np.ndarray) -> np.ndarray:
        return np.hstack([emb, (stats - self.stats_mean) / self.stats_std]).astype(np.float32)

    def predict_features(self, emb: np.ndarray, stats: np.ndarray) -> np.ndarray:
        return 5.0 / (1.0 + np.exp(-(self.design(emb, stats) @ self.coef + self.intercept)))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Predicted 0-5 scores of ``texts``."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return self.predict_features(*featurize(texts, self.card["features"]))

    def save(self, directory: str | Path) -> Path:
        """Writes ``weights.npz`` and ``card.json`` (each via temp file + rename)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "weights.npz") as tmp, tmp.open("wb") as fh:
            np.savez(fh, coef=self.coef, intercept=np.array([self.intercept]), stats_mean=self.stats_mean,
                     stats_std=self.stats_std)
        write_json_atomic(out / "card.json", self.card, indent=2, sort_keys=True)
        return out

    @classmethod
    def load(cls, directory: str | Path) -> QualityClassifier:
        d = Path(directory)
        card = json.loads((d / "card.json").read_text())
        with np.load(d / "weights.npz") as w:
            return cls(w["coef"], float(w["intercept"][0]), w["stats_mean"], w["stats_std"], card)


def distill(seeds: Sequence[Seed], annotator: dict[str, Any], prompt_version: str, domain: str = "en",
            heldout_fraction: float = 0.2, spec: dict[str, Any] | None = None,
            features: tuple[np.ndarray, np.ndarray] | None = None,
            label_rule: LabelRule | None = None) -> QualityClassifier:
    """Fit the classifier on the training split of ``seeds``; report agreement on the held-out split.

    ``annotator`` is the annotator's identity (``Annotator.identity``): model id,
    backend, label rule (``recipe``). ``features`` lets a caller pass precomputed (embeddings, stats).
    The card's metrics compare predictions with the annotator's labels on held-out
    seeds (Spearman, and AUC for label >= 3); the shipped weights are the ones
    measured there, trained on the training split only. ``label_rule`` is the rule that
    made the labels (default: the one ``annotator["recipe"]`` names, if known); its
    text-statistic terms are fixed (``rule_part``), the ridge fits the remainder.
    """
    if len(seeds) < 4:
        raise ValueError(f"distillation needs at least 4 annotated seeds, got {len(seeds)}")
    spec = spec or feature_spec()
    emb, stats = features if features is not None else featurize([s.text for s in seeds], spec)
    labels = np.array([s.label for s in seeds], dtype=np.float64)
    held = np.array([is_heldout(s.doc_id, heldout_fraction) for s in seeds])
    if held.all() or not held.any():  # tiny seed sets: fall back to every fifth seed
        held = np.arange(len(seeds)) % 5 == 4
    train = ~held
    mean = stats[train].mean(0)
    std = np.where(stats[train].std(0) > 1e-6, stats[train].std(0), 1.0)
    clf = QualityClassifier(np.zeros(0), 0.0, mean.astype(np.float32), std.astype(np.float32))
    design = clf.design(emb[train], stats[train]).astype(np.float64)
    dim = emb.shape[1]
    label_rule = label_rule if label_rule is not None else LABEL_RULES.get(str(annotator.get("recipe")))
    fixed_coef, fixed_intercept = rule_part(label_rule, spec["stats"], mean, std)
    target = to_logit(labels[train]) - design[:, dim:] @ fixed_coef - fixed_intercept
    fits = []
    for scale in EMBEDDING_SCALES:
        weighted = design.copy()
        weighted[:, :dim] *= scale
        coef, intercept, loo = fit_ridge(weighted, target)
        coef[:dim] *= scale  # fold the block weight into the coefficients
        coef[dim:] += fixed_coef
        fits.append((loo, scale, coef, intercept + fixed_intercept))
    loo, scale, coef, intercept = min(fits, key=lambda f: f[0])
    clf.coef, clf.intercept = coef.astype(np.float32), intercept
    pred = clf.predict_features(emb[held], stats[held])
    metrics = {
        "heldout_spearman": spearman(pred, labels[held]),
        "heldout_auc_ge3": roc_auc(pred, labels[held] >= POSITIVE_AT),
        "heldout_mae": float(np.mean(np.abs(pred - labels[held]))),
        "n_train": int(train.sum()), "n_heldout": int(held.sum()),
    }
    seeds_hash = seed_set_hash(seeds)
    clf.card = {
        "version": classifier_version(seeds_hash, annotator, prompt_version, spec),
        "domain": domain, "annotator": annotator, "prompt_version": prompt_version, "features": spec,
        "seed_set_hash": seeds_hash, "n_seeds": len(seeds),
        "n_reference_seeds": sum(s.source == "reference" for s in seeds),
        "label_mean": float(labels.mean()), "embedding_scale": scale, "loo_mse_logit": loo, "metrics": metrics,
        "positive_at": POSITIVE_AT,
        "fixed_stat_terms": [k for k in spec["stats"] if label_rule is not None and k in label_rule.weights],
    }
    return clf
