"""Text to MinHash: normalization, word or CJK-character shingles, vectorized MinHash.

Every function here is a pure function of one document's text (and the config), so
signatures can be computed anywhere, in any grouping of documents, and agree bit for bit.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Sequence

import numpy as np
import xxhash

from tier_assets.curation.l1.dedup.config import DedupConfig

CJK_CHAR_SHARE = 0.3  # above this share of CJK characters, shingle characters instead of words
_BLOCK = 2048  # shingles per vectorized MinHash block: (num_perm x block) uint32 stays in cache


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
    return b" ".join(words(text)).decode()


def words(text: str) -> list[bytes]:
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


def constants(seed: int, salt: int, n: int) -> np.ndarray:
    """``n`` pseudo-random uint64 constants; prefix-stable, so more permutations extend fewer."""
    return _splitmix64((np.uint64(seed) << np.uint64(24)) + np.uint64(salt << 16) + np.arange(n, dtype=np.uint64))


@functools.cache
def _permutations(seed: int, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of the universal hashes ``(a * x + b) mod 2**32``, a odd (a bijection of uint32)."""
    v = constants(seed, 1, num_perm)
    a = (v & np.uint64(0xFFFFFFFF)).astype(np.uint32) | np.uint32(1)
    b = (v >> np.uint64(32)).astype(np.uint32)
    return a[:, None], b[:, None]


@functools.cache
def _position_weights(seed: int, ngram: int) -> np.ndarray:
    return constants(seed, 2, ngram) | np.uint64(1)


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


def hash_texts(texts: Sequence[str], config: DedupConfig, chunk: int = 1024) -> tuple[list[str], np.ndarray]:
    """Each text's exact hash (xxh3-128 of ``normalize(text)``) and (n, num_perm) MinHash signature.

    Texts are hashed ``chunk`` at a time to bound memory.
    """
    n = len(texts)
    exact_hashes: list[str] = []
    sigs = np.empty((n, config.num_perm), np.uint32)
    for lo in range(0, n, chunk):
        part = texts[lo:lo + chunk]
        doc_words = [words(t) for t in part]
        norms = [b" ".join(w) for w in doc_words]
        exact_hashes.extend(map(xxhash.xxh3_128_hexdigest, norms))
        cjk = [_cjk_text(norm) for norm in norms]
        tokens, counts = _token_hashes(doc_words, cjk)
        shingles, n_shingles = _shingle_hashes(tokens, counts, config.ngram, config.seed)
        sigs[lo:lo + len(part)] = _minhash(shingles, n_shingles, config.seed, config.num_perm)
    return exact_hashes, sigs
