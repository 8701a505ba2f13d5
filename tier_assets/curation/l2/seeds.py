"""Seed sampling for annotation: stratified over batches, reproducible with a seed.

The LLM annotates only a small sample (it is the expensive step), so the sample
must represent every batch: each batch gets a share proportional to its size
(largest remainder, at least one document when the budget allows). Within a
batch, documents are ranked by a keyed hash of (seed, doc_id) rather than by a
shuffled position, so the same seed picks the same documents whatever order
they arrive in, and adding a new batch does not reshuffle earlier picks.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

Doc = dict[str, Any]


def hash_rank(seed: int, doc_id: str) -> str:
    return hashlib.blake2b(f"{seed}\x1f{doc_id}".encode(), digest_size=8).hexdigest()


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Per-stratum quotas summing to min(n, total): largest-remainder proportional, then >= 1 each if possible."""
    total = sum(sizes.values())
    n = min(n, total)
    keys = sorted(sizes)
    if n == 0:
        return dict.fromkeys(keys, 0)
    exact = {k: n * sizes[k] / total for k in keys}
    quota = {k: int(exact[k]) for k in keys}
    for k in sorted(keys, key=lambda k: (-(exact[k] - quota[k]), k))[: n - sum(quota.values())]:
        quota[k] += 1
    if n >= len(keys):  # no batch goes unseen: small strata borrow from the largest quota
        for k in keys:
            if quota[k] == 0 and sizes[k]:
                donor = max(keys, key=lambda j: (quota[j], j))
                quota[donor] -= 1
                quota[k] = 1
    return quota


def sample_seeds(docs: Sequence[Doc], n: int = 200, seed: int = 0, stratify_by: str = "batch") -> list[Doc]:
    """``n`` documents stratified by ``stratify_by`` (default: batch), same output for the same seed."""
    strata: dict[str, list[Doc]] = defaultdict(list)
    for doc in docs:
        strata[str(doc.get(stratify_by))].append(doc)
    quota = allocate({k: len(v) for k, v in strata.items()}, n)
    picked: list[Doc] = []
    for key in sorted(strata):
        ranked = sorted(strata[key], key=lambda d: hash_rank(seed, str(d["doc_id"])))
        picked.extend(ranked[: quota[key]])
    return picked
