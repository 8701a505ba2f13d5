"""Equivalence edges and the clusters they make: LSH band buckets, verified pairs, union-find.

Every edge is decided from its two signatures alone (integer MinHash agreement,
float64 cosine), so which engine found a candidate pair cannot change the graph, and
union-find's root is the smallest rank in a component whatever order edges arrive in.
"""

from __future__ import annotations

import numpy as np

from tier_assets.curation.l1.dedup.config import DedupConfig
from tier_assets.curation.l1.dedup.hashing import constants
from tier_assets.curation.models.vectors import make_index, range_neighbors


class UnionFind:
    """Union-find whose root is always the smallest index, i.e. the earliest document."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union_edges(self, lo: np.ndarray, hi: np.ndarray) -> None:
        parent = self.parent
        for x, y in zip(lo.tolist(), hi.tolist(), strict=True):
            rx, ry = self.find(x), self.find(y)
            if rx < ry:
                parent[ry] = rx
            elif ry < rx:
                parent[rx] = ry

    def roots(self, nodes: np.ndarray) -> np.ndarray:
        return np.fromiter((self.find(i) for i in nodes.tolist()), dtype=np.int64, count=len(nodes))


def band_keys(sigs: np.ndarray, band: int, rows: int, seed: int) -> np.ndarray:
    """Each signature's bucket key in ``band``: its ``rows`` values of that band combined into one uint64."""
    weights = constants(seed, 3, rows) | np.uint64(1)
    block = sigs[:, band * rows:(band + 1) * rows].astype(np.uint64)
    return (block * weights).sum(axis=1, dtype=np.uint64)


def bucket_pairs(ranks: np.ndarray, new_run: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (lo, hi) of buckets laid out as runs of ``ranks`` (ascending within a run).

    ``new_run`` is True where a bucket starts. Every member is paired with its
    bucket's earliest member (a star) and with its predecessor (a chain): linear in the
    bucket size even for huge buckets, while clusters still connect through the chain.
    """
    n = len(ranks)
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(n), 0))
    member = np.flatnonzero(~new_run)
    chain_member = member[run_start[member] != member - 1]
    return (np.concatenate([ranks[run_start[member]], ranks[chain_member - 1]]),
            np.concatenate([ranks[member], ranks[chain_member]]))


def unique_pairs(lo: np.ndarray, hi: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct pairs, sorted by (lo, hi): the form every engine hands to verification."""
    codes = np.unique(lo.astype(np.int64) * n + hi.astype(np.int64))
    return codes // n, codes % n


def lsh_candidates(sigs: np.ndarray, bands: int, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (lo < hi, rank indices) sharing a band bucket; at most 2 per member per band.

    Buckets come from a stable sort of each band's keys (O(n log n), members stay in
    rank order), paired by ``bucket_pairs``.
    """
    n = len(sigs)
    los: list[np.ndarray] = []
    his: list[np.ndarray] = []
    for band in range(bands):
        keys = band_keys(sigs, band, rows, seed)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        new_run = np.ones(n, bool)
        new_run[1:] = sorted_keys[1:] != sorted_keys[:-1]
        if new_run.all():
            continue
        lo, hi = bucket_pairs(order, new_run)
        los.append(lo)
        his.append(hi)
    if not los:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return unique_pairs(np.concatenate(los), np.concatenate(his), n)


def jaccard(sigs: np.ndarray, lo: np.ndarray, hi: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Estimated Jaccard (share of agreeing MinHash values) of each pair."""
    out = np.empty(len(lo), np.float64)
    for s in range(0, len(lo), chunk):
        out[s:s + chunk] = (sigs[lo[s:s + chunk]] == sigs[hi[s:s + chunk]]).mean(axis=1)
    return out


def cosine(emb: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The lowest cosine over the windows of each pair, place by place (``emb`` is (n, windows, dim)).

    Computed in float64, so an edge never depends on search batching or device.
    """
    if not len(lo):
        return np.zeros(0, np.float64)
    return np.einsum("iwd,iwd->iw", emb[lo].astype(np.float64), emb[hi].astype(np.float64)).min(axis=1)


def semantic_edges(emb: np.ndarray, labels: np.ndarray, start: np.ndarray, config: DedupConfig,
                    uf: UnionFind) -> None:
    """Add cosine edges of every component reachable from ``start``; other components cannot matter.

    Searching the whole prefix against itself would be quadratic; instead the
    components holding current documents are searched, then any component their
    neighbours belong to, until no new component is reached. Only first windows are
    indexed: agreeing there is necessary, and every other window is checked per pair.
    """
    heads = np.ascontiguousarray(emb[:, 0])
    index = make_index(emb.shape[2], "flat")
    index.add(heads)
    touched = np.zeros(len(emb), bool)
    queried = np.zeros(len(emb), bool)
    touched[labels[start]] = True
    slack = 1e-3  # float32 search may round a pair just below the threshold; verified below in float64
    while True:
        frontier = np.flatnonzero(touched[labels] & ~queried)
        if not len(frontier):
            break
        queried[frontier] = True
        lims, nbrs, _ = range_neighbors(index, heads[frontier], config.cosine_threshold - slack, k=config.knn_k)
        src = np.repeat(frontier, np.diff(lims))
        keep = src != nbrs
        src, nbrs = src[keep], nbrs[keep]
        ok = cosine(emb, src, nbrs) >= config.cosine_threshold
        src, nbrs = src[ok], nbrs[ok]
        uf.union_edges(np.minimum(src, nbrs), np.maximum(src, nbrs))
        touched[labels[nbrs]] = True
