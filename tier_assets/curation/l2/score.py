"""Score L1 documents with the distilled classifier and select the L2 tier.

Every document gets a score and the classifier version that produced it, so a
newer classifier makes the partition visibly stale. Selection is by threshold
or by top fraction (ties broken by doc id, so re-runs agree); documents not
selected go to the rejected set with their score: nothing is lost. Text that
addresses a judge is removed before scoring and costs ``injection_penalty``
points, as in annotation, so it cannot buy a place in L2.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from tier_assets.curation.l2.distill import QualityClassifier
from tier_assets.curation.l2.injection import neutralize

STAGE = "l2_select"


def score_texts(texts: Sequence[str], classifier: QualityClassifier, injection_penalty: float = 1.0,
                chunk: int = 1024, progress: Callable[[str], None] | None = None) -> tuple[np.ndarray, list[int]]:
    """(0-5 scores, judge-addressing sentences removed per text), ``chunk`` texts at a time."""
    scores, injections = np.zeros(len(texts), dtype=np.float64), []
    start = time.perf_counter()
    for k in range(0, len(texts), chunk):
        cleaned, found = zip(*(neutralize(t) for t in texts[k:k + chunk]), strict=True)
        scores[k:k + len(cleaned)] = classifier.predict(list(cleaned))
        injections += found
        if progress:
            done = k + len(cleaned)
            rate = done / max(time.perf_counter() - start, 1e-9)
            progress(f"L2 scoring: {done}/{len(texts)} ({rate:.1f} docs/s, ETA {(len(texts) - done) / rate:.0f}s)")
    penalty = injection_penalty * (np.array(injections, dtype=np.float64) > 0)
    return np.clip(scores - penalty, 0.0, 5.0), injections


def selection_mask(scores: np.ndarray, doc_ids: Sequence[str], threshold: float | None = None,
                   top_fraction: float | None = None) -> tuple[np.ndarray, float]:
    """(selected mask, the cut score): ``score >= threshold``, or the best ``top_fraction`` of documents."""
    if (threshold is None) == (top_fraction is None):
        raise ValueError("give exactly one of threshold or top_fraction")
    if threshold is not None:
        return scores >= threshold, float(threshold)
    assert top_fraction is not None
    if not 0.0 <= top_fraction <= 1.0:
        raise ValueError("top_fraction must be in [0, 1]")
    k = math.ceil(top_fraction * len(scores))
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], doc_ids[i]))
    mask = np.zeros(len(scores), dtype=bool)
    mask[order[:k]] = True
    return mask, float(scores[order[k - 1]]) if k else math.inf
