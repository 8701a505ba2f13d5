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
    """Per-stratum quotas summing to min(n, total): proportional, largest remainder, >= 1 each if possible."""
    total = sum(sizes.values())
    n = min(n, total)
    if n == 0:
        return dict.fromkeys(sizes, 0)
    keys = sorted(sizes)
    quota = {k: 1 if n >= len(keys) and sizes[k] else 0 for k in keys}
    left = n - sum(quota.values())
    room = {k: sizes[k] - quota[k] for k in keys}
    room_total = sum(room.values())
    if left and room_total:
        exact = {k: left * room[k] / room_total for k in keys}
        for k in keys:
            quota[k] += int(exact[k])
        rest = n - sum(quota.values())
        for k in sorted(keys, key=lambda k: (-(exact[k] - int(exact[k])), k))[:rest]:
            quota[k] += 1
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
