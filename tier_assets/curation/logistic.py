"""One small logistic regression for the calibrated combiners (L2 label rules, the L4 knowledge judge).

Both fit a handful of standardized signals to human 0/1 labels; a dependency-free Newton
solver keeps the fitted weights exact and reproducible across machines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def fit_logistic(rows: Sequence[Mapping[str, float]], labels: Sequence[int], keys: Sequence[str], c: float,
                 iterations: int = 50) -> tuple[dict[str, float], dict[str, float], dict[str, float], float]:
    """L2-penalized logistic regression by Newton steps on the standardized ``keys`` of ``rows``.

    ``c`` is the inverse penalty (as scikit-learn's ``C``); the bias is not penalized. Returns
    (weights, center, scale) rounded to 6 places, and the unrounded bias.
    """
    x = np.array([[r[k] for k in keys] for r in rows], dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    center, scale = x.mean(0), np.where(x.std(0) > 1e-9, x.std(0), 1.0)
    z = np.hstack([(x - center) / scale, np.ones((len(y), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.r_[np.full(len(keys), 1.0 / c), 0.0]
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-z @ w))
        grad = z.T @ (p - y) + penalty * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break

    def rounded(values: np.ndarray) -> dict[str, float]:
        return {k: round(float(v), 6) for k, v in zip(keys, values, strict=True)}

    return rounded(w[:-1]), rounded(center), rounded(scale), float(w[-1])
