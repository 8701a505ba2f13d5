"""Dedup settings, and the fingerprint cached signatures are checked against."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from tier_assets.curation.validation import check_at_least_one, check_positive_fraction

SIGNATURE_VERSION = 1  # bump when normalization, shingling or hashing changes


@dataclass(frozen=True)
class DedupConfig:
    """Dedup settings; the defaults were measured with ``bench/l1_dedup.py``.

    ``bands x rows`` MinHash permutations; LSH makes a pair a candidate when one band
    agrees (50% chance at Jaccard ``(1/bands)**(1/rows)``, 0.55 for 20 x 5), and a
    candidate becomes an edge when its estimated Jaccard is ``>= jaccard_threshold``.
    Why 20 x 5 and 0.7: real near-duplicates (boilerplate, typos, truncation to 80%)
    sit at Jaccard 0.56-1.0 (median 0.87); there 20 x 5 / 0.7 gives precision 1.0 and
    recall 0.96, where 0.8 drops recall to 0.79 and 20 x 10 (200 permutations, twice
    the cost) to 0.92.

    The semantic stage judges whole documents: MiniLM reads 256 tokens at a time, so
    each document gets ``embed_windows`` windows of that size spread evenly from its
    beginning to its end (one window for a document that fits in one), and a pair is
    a semantic duplicate only when every window agrees with the window at the same
    place in the other document at cosine ``>= cosine_threshold``. Documents that
    share an opening, a first post or a footer and differ elsewhere then disagree in
    some window; a truncated or reordered copy is left to MinHash.
    """

    exact: bool = True
    minhash: bool = True
    semantic: bool = True
    ngram: int = 5
    bands: int = 20
    rows: int = 5
    jaccard_threshold: float = 0.7
    cosine_threshold: float = 0.95
    seed: int = 0
    embedder_model: str | None = None
    embed_windows: int = 3
    knn_k: int = 16

    def __post_init__(self) -> None:
        if not (self.exact or self.minhash or self.semantic):
            raise ValueError("DedupConfig: enable at least one of exact, minhash, semantic")
        check_at_least_one(self, "ngram", "bands", "rows", "embed_windows", "knn_k", integer=True)
        if self.bands * self.rows > 4096:
            raise ValueError(f"DedupConfig: bands * rows must be <= 4096, got {self.bands * self.rows}")
        check_positive_fraction(self, "jaccard_threshold", "cosine_threshold")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ValueError(f"DedupConfig.seed must be an integer in [0, 2**32), got {self.seed!r}")

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    @property
    def minhash_fingerprint(self) -> str:
        """What exact hashes and MinHash signatures depend on; cached signatures must match it."""
        return (f"v{SIGNATURE_VERSION} ngram={self.ngram} num_perm={self.num_perm} seed={self.seed} "
                f"unicode={unicodedata.unidata_version}")
