"""Per-domain deduplication across batches: exact -> MinHash-LSH -> semantic (FAISS).

Two halves, so that a caller can cache the expensive part:

* ``compute_signatures(docs, config)`` is a pure function of the documents: per
  document an exact hash of the normalized text, a MinHash signature and (when the
  semantic stage is on) an embedding. Store it as Parquet per batch.
* ``dedup(current_docs, current_sigs, earlier_sigs, config)`` decides one batch
  from the signatures of that batch and of every earlier batch of the domain.

Semantics (DESIGN.md, "Dedup across batches is deterministic"): documents are
ranked by ``(batch, order)``, batch keys compared as strings. Equivalence edges
(same normalized text; estimated Jaccard >= threshold; cosine >= threshold) join
documents into clusters (union-find); the earliest member of a cluster is kept and
every other member is rejected naming it as twin. A batch is decided on the graph
of all documents in batches up to and including it, so the verdict depends only on
the batch and earlier ones: materializing batches in any order gives the same
result, and a document that only has twins in later batches is kept. Every edge is
decided from its two signatures alone (integer MinHash agreement, float64 cosine),
so the graph of a prefix of batches is a subgraph of the graph of a longer prefix
and the twin a batch names is always a document kept by its own batch.

A rejected document's method is the first stage under which its cluster already
has an earlier member: exact, then MinHash (exact + MinHash edges), then semantic.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from tier_assets.curation.models.vectors import make_index, range_neighbors
from tier_assets.curation.pipeline import (
    Doc,
    Models,
    PartitionStep,
    Resources,
    StepResult,
    add_signals,
    reject,
)
from tier_assets.curation.validation import check_at_least_one, check_positive_fraction

SIGNATURE_VERSION = 1  # bump when normalization, shingling or hashing changes
MINHASH_META = b"tier_assets.dedup.minhash"
EMBEDDER_META = b"tier_assets.dedup.embedder"
CJK_CHAR_SHARE = 0.3  # above this share of CJK characters, shingle characters instead of words
_BLOCK = 2048  # shingles per vectorized MinHash block: (num_perm x block) uint32 stays in cache

STAGES = {"exact": "dedup_exact", "minhash": "dedup_minhash", "semantic": "dedup_semantic"}
REASONS = {"exact": "exact_duplicate", "minhash": "near_duplicate", "semantic": "semantic_duplicate"}


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


# ---------------------------------------------------------------- normalization


def _ascii_table() -> bytes:
    """Byte map: ASCII letters to lowercase, ASCII punctuation/symbols/whitespace to space."""
    out = bytearray(range(256))
    for c in range(128):
        ch = chr(c)
        if unicodedata.category(ch)[0] in "PS" or ch.isspace():
            out[c] = 32
        else:
            out[c] = ord(ch.lower())
    return bytes(out)


_ASCII = _ascii_table()


def _char_class(lo: int, hi: int) -> str:
    """A regex class of the punctuation, symbol and whitespace code points in [lo, hi)."""
    parts, start = [], None
    for c in range(lo, hi + 1):
        hit = c < hi and (unicodedata.category(chr(c))[0] in "PS" or chr(c).isspace())
        if hit and start is None:
            start = c
        elif not hit and start is not None:
            parts.append(re.escape(chr(start)) + ("" if start == c - 1 else "-" + re.escape(chr(c - 1))))
            start = None
    return "[" + "".join(parts) + "]+"


# The BMP and astral planes get separate patterns: one class spanning both makes
# Python's regex engine scan range lists per character (20x slower).
_BMP_PUNCT = re.compile(_char_class(0x80, 0x10000))


@functools.cache
def _astral_punct() -> re.Pattern[str]:
    return re.compile(_char_class(0x10000, sys.maxunicode + 1))


_ASTRAL_LEAD = re.compile(rb"[\xf0-\xf4]")  # UTF-8 lead bytes of code points above U+FFFF
_CJK_LEAD = re.compile(rb"[\xe3-\xe9\xef]")  # UTF-8 lead bytes of U+3000-U+9FFF and U+F000-U+FFFF
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def normalize(text: str) -> str:
    """Lowercase, punctuation and symbols (Unicode P*/S*) replaced by spaces, whitespace collapsed."""
    return b" ".join(_words(text)).decode()


def _words(text: str) -> list[bytes]:
    """The normalized words as UTF-8 bytes (ASCII text takes a bytes-only fast path)."""
    if text.isascii():
        return text.encode().translate(_ASCII).split()
    encoded = _BMP_PUNCT.sub(" ", text.lower().encode().translate(_ASCII).decode()).encode()
    if _ASTRAL_LEAD.search(encoded):
        encoded = _astral_punct().sub(" ", encoded.decode()).encode()
    return encoded.split()


def _cjk_text(norm: bytes) -> str | None:
    """The normalized text when it is mostly Chinese/Japanese (no spaces between words), else None."""
    if not _CJK_LEAD.search(norm):
        return None
    text = norm.decode()
    cjk = sum(len(run) for run in _CJK.findall(text))
    return text if cjk >= CJK_CHAR_SHARE * max(1, len(text) - text.count(" ")) else None


# ---------------------------------------------------------------- hashing


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A strong 64-bit finalizer (vectorized): spreads every input bit over the output."""
    x = x.astype(np.uint64, copy=True)
    x += np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _constants(seed: int, salt: int, n: int) -> np.ndarray:
    """``n`` pseudo-random uint64 constants; prefix-stable, so more permutations extend fewer."""
    return _splitmix64((np.uint64(seed) << np.uint64(24)) + np.uint64(salt << 16) + np.arange(n, dtype=np.uint64))


@functools.cache
def _permutations(seed: int, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of the universal hashes ``(a * x + b) mod 2**32``, a odd (a bijection of uint32)."""
    v = _constants(seed, 1, num_perm)
    a = (v & np.uint64(0xFFFFFFFF)).astype(np.uint32) | np.uint32(1)
    b = (v >> np.uint64(32)).astype(np.uint32)
    return a[:, None], b[:, None]


@functools.cache
def _position_weights(seed: int, ngram: int) -> np.ndarray:
    return _constants(seed, 2, ngram) | np.uint64(1)


def _token_hashes(words: list[list[bytes]], cjk: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """64-bit token hashes of a chunk of documents, concatenated, and each document's token count.

    Words are hashed with xxh3-64 in one pass over the chunk; CJK documents use their
    characters' code points (finalized) as tokens.
    """
    flat = [w for doc_words, doc_cjk in zip(words, cjk, strict=True) if doc_cjk is None for w in doc_words]
    hashed = np.fromiter(map(xxhash.xxh3_64_intdigest, flat), dtype=np.uint64, count=len(flat))
    parts: list[np.ndarray] = []
    pos = 0
    for doc_words, doc_cjk in zip(words, cjk, strict=True):
        if doc_cjk is None:
            parts.append(hashed[pos:pos + len(doc_words)])
            pos += len(doc_words)
        else:
            chars = doc_cjk.replace(" ", "").encode("utf-32-le")
            parts.append(_splitmix64(np.frombuffer(chars, dtype=np.uint32)))
    counts = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    return (np.concatenate(parts) if parts else np.zeros(0, np.uint64)), counts


def _shingle_hashes(tokens: np.ndarray, counts: np.ndarray, ngram: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every document's token n-grams, concatenated, and the count per document.

    An n-gram's hash combines its tokens' hashes by position and finalizes them: as
    good as hashing the n-gram string, for ``ngram`` times fewer hash calls. A
    document shorter than ``ngram`` tokens gets one shingle of all its tokens.
    """
    n_shingles = np.where(counts >= ngram, counts - ngram + 1, (counts > 0).astype(np.int64))
    m = len(tokens)
    if m == 0:
        return np.zeros(0, np.uint32), n_shingles
    weights = _position_weights(seed, ngram)
    starts = np.cumsum(counts) - counts
    padded = np.concatenate([tokens, np.zeros(ngram - 1, np.uint64)])
    acc = padded[:m] * weights[0]
    for j in range(1, ngram):
        acc += padded[j:j + m] * weights[j]
    keep = np.arange(m) + ngram <= np.repeat(starts + counts, counts)  # window inside its document
    for d in np.flatnonzero((counts > 0) & (counts < ngram)).tolist():
        s, c = int(starts[d]), int(counts[d])
        acc[s] = (tokens[s:s + c] * weights[:c]).sum(dtype=np.uint64)
        keep[s] = True
    return (_splitmix64(acc[keep]) >> np.uint64(32)).astype(np.uint32), n_shingles


def _minhash(shingles: np.ndarray, n_shingles: np.ndarray, seed: int, num_perm: int) -> np.ndarray:
    """(n, num_perm) uint32 MinHash signatures; a document without shingles gets all 0xFFFFFFFF.

    The concatenated shingles are hashed by all permutations at once, a
    (num_perm x block) matrix per block, and reduced with ``minimum.reduceat`` over
    segments (a document, or its part inside one block), then segments per document.
    """
    a, b = _permutations(seed, num_perm)
    out = np.full((len(n_shingles), num_perm), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    has = np.flatnonzero(n_shingles > 0)
    if not len(has):
        return out
    total = len(shingles)
    doc_starts = (np.cumsum(n_shingles) - n_shingles)[has]
    seg_starts = np.union1d(doc_starts, np.arange(0, total, _BLOCK))
    seg_owner = np.searchsorted(doc_starts, seg_starts, side="right") - 1
    mins = np.empty((len(seg_starts), num_perm), np.uint32)
    buf = np.empty((num_perm, _BLOCK), np.uint32)
    for lo in range(0, total, _BLOCK):
        hi = min(lo + _BLOCK, total)
        k0, k1 = np.searchsorted(seg_starts, [lo, hi])
        values = buf[:, :hi - lo]
        np.multiply(a, shingles[lo:hi], out=values)
        np.add(values, b, out=values)
        mins[k0:k1] = np.minimum.reduceat(values, seg_starts[k0:k1] - lo, axis=1).T
    first = np.flatnonzero(np.r_[True, seg_owner[1:] != seg_owner[:-1]])
    out[has[seg_owner[first]]] = np.minimum.reduceat(mins, first, axis=0)
    return out


def compute_signatures(docs: Sequence[Doc], config: DedupConfig, embedder: Any = None,
                       chunk: int = 1024) -> pa.Table:
    """Per-document dedup signatures, a pure function of ``docs`` (cache them per batch as Parquet).

    Columns: ``doc_id``, ``batch``, ``order`` (position in ``docs``, i.e. record order),
    ``exact_hash`` (xxh3-128 of ``normalize(text)``), ``minhash`` (list<uint32> of
    ``num_perm``) and, when ``config.semantic``, ``embedding`` (list<float32>: the
    ``embed_windows`` unit vectors of the document's windows, beginning first, one
    after the other). The schema metadata records the hashing fingerprint and the
    embedder version, which ``dedup`` checks.
    Documents are hashed ``chunk`` at a time to bound memory.
    """
    n = len(docs)
    exact_hashes: list[str] = []
    sigs = np.empty((n, config.num_perm), np.uint32)
    for lo in range(0, n, chunk):
        texts = [d["text"] for d in docs[lo:lo + chunk]]
        words = [_words(t) for t in texts]
        norms = [b" ".join(w) for w in words]
        exact_hashes.extend(map(xxhash.xxh3_128_hexdigest, norms))
        cjk = [_cjk_text(norm) for norm in norms]
        tokens, counts = _token_hashes(words, cjk)
        shingles, n_shingles = _shingle_hashes(tokens, counts, config.ngram, config.seed)
        sigs[lo:lo + len(texts)] = _minhash(shingles, n_shingles, config.seed, config.num_perm)
    columns: dict[str, pa.Array] = {
        "doc_id": pa.array([d["doc_id"] for d in docs], pa.string()),
        "batch": pa.array([d["batch"] for d in docs], pa.string()),
        "order": pa.array(np.arange(n, dtype=np.int64)),
        "exact_hash": pa.array(exact_hashes, pa.string()),
        "minhash": _list_array(sigs, pa.uint32()),
    }
    metadata = {MINHASH_META: config.minhash_fingerprint.encode()}
    if config.semantic:
        if embedder is None:
            raise ValueError("semantic dedup needs an embedder: pass one (or set semantic: false)")
        vectors = embedder.encode_windows([d["text"] for d in docs], config.embed_windows)
        flat = vectors.reshape(n, -1) if n else np.zeros((0, 0), np.float32)  # an empty partition has no width
        columns["embedding"] = _list_array(flat.astype(np.float32, copy=False), pa.float32())
        metadata[EMBEDDER_META] = f"{embedder.version} windows={config.embed_windows}".encode()
    return pa.table(columns).replace_schema_metadata(metadata)


def _list_array(matrix: np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    n, width = matrix.shape
    offsets = pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32) if n else np.zeros(1, np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1), value_type))


def _matrix(column: pa.ChunkedArray, width: int, dtype: type, what: str) -> np.ndarray:
    """A list column of fixed length ``width`` as an (n, width) numpy matrix."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    if len(arr) and (lengths != width).any():
        raise ValueError(f"{what}: every list must have length {width} (signatures from another config?)")
    return np.asarray(arr.flatten().to_numpy(zero_copy_only=False), dtype=dtype).reshape(len(arr), width)


# ---------------------------------------------------------------- dedup


class _UnionFind:
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


def _lsh_candidates(sigs: np.ndarray, bands: int, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (lo < hi, rank indices) sharing a band bucket; at most 2 per member per band.

    Buckets come from a stable sort of each band's keys (O(n log n), members stay in
    rank order). Within a bucket every member is paired with the bucket's earliest
    member and with its predecessor: linear in the bucket size even for huge buckets,
    while clusters still connect through the chain.
    """
    n = len(sigs)
    weights = _constants(seed, 3, rows) | np.uint64(1)
    pairs: list[np.ndarray] = []
    for band in range(bands):
        block = sigs[:, band * rows:(band + 1) * rows].astype(np.uint64)
        keys = (block * weights).sum(axis=1, dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        new_run = np.ones(n, bool)
        new_run[1:] = sorted_keys[1:] != sorted_keys[:-1]
        if new_run.all():
            continue
        run_start = np.maximum.accumulate(np.where(new_run, np.arange(n), 0))
        member = np.flatnonzero(~new_run)
        star = order[run_start[member]] * n + order[member]
        chain_member = member[run_start[member] != member - 1]
        chain = order[chain_member - 1] * n + order[chain_member]
        pairs.extend((star, chain))
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    codes = np.unique(np.concatenate(pairs).astype(np.int64))
    return codes // n, codes % n


def _jaccard(sigs: np.ndarray, lo: np.ndarray, hi: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Estimated Jaccard (share of agreeing MinHash values) of each pair."""
    out = np.empty(len(lo), np.float64)
    for s in range(0, len(lo), chunk):
        out[s:s + chunk] = (sigs[lo[s:s + chunk]] == sigs[hi[s:s + chunk]]).mean(axis=1)
    return out


def _cosine(emb: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The lowest cosine over the windows of each pair, place by place (``emb`` is (n, windows, dim)).

    Computed in float64, so an edge never depends on search batching or device.
    """
    if not len(lo):
        return np.zeros(0, np.float64)
    return np.einsum("iwd,iwd->iw", emb[lo].astype(np.float64), emb[hi].astype(np.float64)).min(axis=1)


def _semantic_edges(emb: np.ndarray, labels: np.ndarray, start: np.ndarray, config: DedupConfig,
                    uf: _UnionFind) -> None:
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
        ok = _cosine(emb, src, nbrs) >= config.cosine_threshold
        src, nbrs = src[ok], nbrs[ok]
        uf.union_edges(np.minimum(src, nbrs), np.maximum(src, nbrs))
        touched[labels[nbrs]] = True


def _prefix_table(current_sigs: pa.Table, earlier_sigs: Sequence[pa.Table], batch: str,
                  config: DedupConfig) -> pa.Table:
    """Signatures of earlier batches and the current one, sorted by rank (batch, order)."""
    schema = pa.schema([("doc_id", pa.string()), ("batch", pa.string()), ("order", pa.int64()),
                        ("exact_hash", pa.string()), ("minhash", pa.list_(pa.uint32()))]
                       + ([("embedding", pa.list_(pa.float32()))] if config.semantic else []))
    cols = schema.names
    embedders = set()
    parts = []
    for i, table in enumerate([current_sigs, *earlier_sigs]):
        what = "current_sigs" if i == 0 else f"earlier_sigs[{i - 1}]"
        meta = table.schema.metadata or {}
        if meta.get(MINHASH_META, b"").decode() != config.minhash_fingerprint:
            raise ValueError(f"{what} were computed with {meta.get(MINHASH_META, b'no fingerprint').decode()!r}, "
                             f"config needs {config.minhash_fingerprint!r}: recompute them")
        missing = [c for c in cols if c not in table.column_names]
        if missing:
            raise ValueError(f"{what} lack columns {missing} (semantic signatures need an embedder)")
        if config.semantic:
            embedders.add(meta.get(EMBEDDER_META, b"").decode())
        if i > 0:
            table = table.filter(pc.less(table["batch"], batch))
        parts.append(table.select(cols).cast(schema))
    if len(embedders) > 1:
        raise ValueError(f"signatures mix embeddings from {sorted(embedders)}: recompute them with one embedder")
    return pa.concat_tables(parts).sort_by([("batch", "ascending"), ("order", "ascending")])


def dedup(current_docs: Sequence[Doc], current_sigs: pa.Table, earlier_sigs: Sequence[pa.Table],
          config: DedupConfig) -> StepResult:
    """Decide one batch of one domain: keep cluster roots, reject the rest naming their twin.

    ``current_sigs`` are ``compute_signatures(current_docs, config)``; ``earlier_sigs``
    are signature tables of the same domain (rows of batches not earlier than the
    current one are ignored, so passing every cached batch is fine). Rejected
    documents get stage ``dedup_exact|dedup_minhash|dedup_semantic``, reason
    ``exact_duplicate|near_duplicate|semantic_duplicate``, detail
    ``twin=<doc_id> batch=<batch> jaccard=<j>`` (``cosine=<c>`` for semantic), and
    ``signals.dedup = {dup_twin, dup_twin_batch, dup_method, dup_cluster, dup_similarity}``.
    """
    if not current_docs:
        return StepResult([], [])
    batches = {d["batch"] for d in current_docs}
    if len(batches) != 1:
        raise ValueError(f"current_docs must come from one batch, got {sorted(batches)}")
    batch = batches.pop()
    if set(current_sigs["batch"].to_pylist()) != {batch}:
        raise ValueError(f"current_sigs must all be of batch {batch!r}")
    table = _prefix_table(current_sigs, earlier_sigs, batch, config)
    doc_ids = table["doc_id"].to_pylist()
    batch_col = table["batch"].to_pylist()
    rank_of = {doc_id: r for r, (doc_id, b) in enumerate(zip(doc_ids, batch_col, strict=True)) if b == batch}
    if len(rank_of) != len(current_docs) or any(d["doc_id"] not in rank_of for d in current_docs):
        raise ValueError("current_sigs do not match current_docs (one row per doc_id)")
    current = np.fromiter((rank_of[d["doc_id"]] for d in current_docs), np.int64, count=len(current_docs))

    n = table.num_rows
    sigs = _matrix(table["minhash"], config.num_perm, np.uint32, "minhash")
    uf = _UnionFind(n)
    method = np.full(len(current), "", dtype=object)

    if config.exact:
        group = pc.dictionary_encode(table["exact_hash"].combine_chunks()).indices.to_numpy()
        _, first = np.unique(group, return_index=True)
        root = first[group]
        linked = np.flatnonzero(root != np.arange(n))
        uf.union_edges(root[linked], linked)
        method[root[current] < current] = "exact"
    if config.minhash:
        lo, hi = _lsh_candidates(sigs, config.bands, config.rows, config.seed)
        ok = _jaccard(sigs, lo, hi) >= config.jaccard_threshold
        uf.union_edges(lo[ok], hi[ok])
        method[(method == "") & (uf.roots(current) < current)] = "minhash"
    emb = None
    if config.semantic:
        emb = _window_matrix(table, config.embed_windows)
        labels = uf.roots(np.arange(n))
        _semantic_edges(emb, labels, current, config, uf)
        method[(method == "") & (uf.roots(current) < current)] = "semantic"

    twins = uf.roots(current)
    similarity = _jaccard(sigs, current, twins)
    if emb is not None:
        semantic = method == "semantic"
        similarity[semantic] = _cosine(emb, current[semantic], twins[semantic])
    kept: list[Doc] = []
    rejected: list[Doc] = []
    for doc, rank, twin, how, sim in zip(current_docs, current.tolist(), twins.tolist(), method, similarity.tolist(),
                                         strict=True):
        if twin == rank:
            kept.append(doc)
            continue
        add_signals(doc, "dedup", {
            "dup_twin": doc_ids[twin], "dup_twin_batch": batch_col[twin], "dup_method": how,
            "dup_cluster": doc_ids[twin], "dup_similarity": round(sim, 4),
        })
        measure = "cosine" if how == "semantic" else "jaccard"
        detail = f"twin={doc_ids[twin]} batch={batch_col[twin]} {measure}={sim:.2f}"
        rejected.append(reject(doc, STAGES[how], REASONS[how], detail))
    return StepResult(kept, rejected)


def _window_matrix(table: pa.Table, windows: int) -> np.ndarray:
    """The embedding column as an (n, windows, dim) array of window vectors."""
    column = table["embedding"].combine_chunks()
    width = int(pc.list_value_length(column)[0].as_py()) if len(column) else 0
    if width % windows:
        raise ValueError(f"embedding: {width} values do not split into {windows} windows (signatures from "
                         "another config?)")
    return _matrix(column, width, np.float32, "embedding").reshape(len(column), windows, width // windows)


class Dedup(PartitionStep):
    """Signatures of the whole batch, then ``dedup`` against the domain's earlier batches.

    A partition step: a document's fate depends on every other document of the
    batch and on the earlier batches' signatures (``earlier_sigs``). The embedder
    comes from ``setup`` when semantic dedup is on. After ``run``, ``signatures``
    holds the batch's table for the caller to cache.
    """

    name = "dedup"

    def __init__(self, config: DedupConfig, earlier_sigs: Sequence[pa.Table] = ()):
        self.config = config
        self.earlier_sigs = earlier_sigs
        self.resources = Resources(models=("embedder",) if config.semantic else ())
        self.embedder: Any = None
        self.signatures: pa.Table | None = None

    def setup(self, models: Models) -> None:
        self.embedder = models.require("embedder", self.name) if self.config.semantic else None

    def run(self, docs: list[Doc]) -> StepResult:
        self.signatures = compute_signatures(docs, self.config, self.embedder)
        return dedup(docs, self.signatures, self.earlier_sigs, self.config)
