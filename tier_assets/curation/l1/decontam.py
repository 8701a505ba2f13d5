"""Benchmark decontamination by word n-gram overlap (GPT-3 / Llama style 13-grams).

A document that contains any n-gram of a benchmark item (lowercased NFKC word
tokens) is rejected, naming the benchmark and item, so evaluation scores of
models trained on the corpus stay honest.

The index keeps one 64-bit hash per distinct n-gram in a sorted NumPy array
plus a parallel array of item numbers (12 bytes per n-gram, ~10x lighter than a
Python dict), and documents are hashed with a vectorized polynomial rolling hash
over xxh3 token hashes, so both building and scanning stay fast.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import xxhash

from tier_assets.curation.pipeline import Doc, Filter

DEFAULT_BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks_data"

_TOKEN = re.compile(r"\w+")
_GSM8K_CALC = re.compile(r"<<[^<>]*>>")  # calculator annotations; copies on the web usually drop them
_P = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier for the rolling hash (mod 2**64)
_RULES = 1  # bump when what gets indexed changes: it is part of BenchmarkIndex.version
_MIN_CONTENT = 4  # content tokens an indexed n-gram needs, so that it is specific to its item
_BITMAP_BITS = 26  # 8 MiB prefilter: ~1.3% of its bits are set by the ~0.9M default n-grams
_BITMAP_SHIFT = np.uint64(64 - _BITMAP_BITS)


def tokenize(text: str) -> list[str]:
    """Lowercased NFKC word tokens: formatting, punctuation and case do not hide a copy."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


def _token_hashes(tokens: list[str]) -> np.ndarray:
    return np.fromiter(
        map(xxhash.xxh3_64_intdigest, map(str.encode, tokens)), dtype=np.uint64, count=len(tokens)
    )


def window_hashes(token_hashes: np.ndarray, k: int) -> np.ndarray:
    """Hash of every k-token window: sum of h[i+j] * P**(k-1-j) mod 2**64, vectorized over i."""
    m = len(token_hashes) - k + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    out = token_hashes[:m].copy()
    for j in range(1, k):
        out *= _P
        out += token_hashes[j : j + m]
    return out


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark item; ``segments`` are its fields in reading order, the question / prompt first.

    ``context`` is text that follows the item (HumanEval's canonical solution): its
    first tokens complete n-grams that start in the segments but start none of
    their own, because solution code is idiomatic ("for i in range(len(l)): for j
    in range(i + 1, len(l))") and its own 13-grams occur in ordinary code.
    """

    benchmark: str
    item_id: str
    segments: tuple[str, ...]
    context: str = ""


@dataclass(frozen=True)
class Contamination:
    benchmark: str
    item_id: str
    ngram: str  # the matching tokens of the document

    def detail(self) -> str:
        return f'benchmark={self.benchmark} item={self.item_id} ngram="{self.ngram}"'


class BenchmarkIndex:
    """N-gram hashes of benchmark items -> the first item holding them.

    Every n-gram of an item's token stream (fields concatenated) is indexed. A
    question (first field) or whole item shorter than ``n`` tokens is indexed
    whole as one shorter n-gram, so short questions still match when it has at
    least ``min_tokens`` tokens. Any indexed n-gram needs 4 content tokens (not
    function words, digits or single characters): "Which of the following
    statements is not true" or HumanEval's "0, 1, 2, ..., 9, A, B, C" would
    otherwise reject ordinary quiz pages and code.
    """

    def __init__(self, items: Iterable[BenchmarkItem], n: int = 13, min_tokens: int = 8):
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if not 1 <= min_tokens <= n:
            raise ValueError(f"min_tokens must be in [1, n={n}], got {min_tokens}")
        self.n, self.min_tokens = n, min_tokens
        self.items: list[tuple[str, str]] = []
        item_digests: list[bytes] = []
        hash_parts: list[np.ndarray] = []
        item_parts: list[np.ndarray] = []
        short_lengths: set[int] = set()
        for number, item in enumerate(items):
            self.items.append((item.benchmark, item.item_id))
            item_digests.append(_item_digest(item))
            per_segment = [tokenize(s) for s in item.segments]
            stream = [t for tokens in per_segment for t in tokens]
            full = stream + tokenize(item.context)[: n - 1]
            grams = [window_hashes(_token_hashes(full), n)[_content_counts(full, n) >= _MIN_CONTENT]]
            short = {
                tuple(t)
                for t in (per_segment[0], stream)
                if min_tokens <= len(t) < n and _content_counts(t, len(t))[0] >= _MIN_CONTENT
            }
            for tokens in short:
                grams.append(window_hashes(_token_hashes(list(tokens)), len(tokens)))
                short_lengths.add(len(tokens))
            for g in grams:
                hash_parts.append(g)
                item_parts.append(np.full(len(g), number, dtype=np.uint32))
        hashes = np.concatenate(hash_parts) if hash_parts else np.empty(0, dtype=np.uint64)
        owners = np.concatenate(item_parts) if item_parts else np.empty(0, dtype=np.uint32)
        # np.unique's return_index is the first occurrence: an n-gram shared by
        # several items (MMLU has duplicate rows) is credited to the earliest.
        self.hashes, first = np.unique(hashes, return_index=True)
        self.owners = owners[first]
        # A bitmap of the hashes' top bits answers "surely absent" for ~99% of a
        # document's windows with one memory access; only the rest are binary-searched.
        top = self.hashes >> _BITMAP_SHIFT
        self._bitmap = np.zeros(1 << (_BITMAP_BITS - 3), dtype=np.uint8)
        np.bitwise_or.at(
            self._bitmap, top >> np.uint64(3), np.left_shift(1, top & np.uint64(7)).astype(np.uint8)
        )
        self.lengths = (n, *sorted(short_lengths, reverse=True))
        self.benchmarks = dict(Counter(b for b, _ in self.items))
        version = hashlib.blake2b(f"rules={_RULES};n={n};min_tokens={min_tokens}".encode(), digest_size=8)
        for digest in sorted(item_digests):
            version.update(digest)
        self.version = version.hexdigest()

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (the bulk of the index)."""
        return self.hashes.nbytes + self.owners.nbytes + self._bitmap.nbytes

    def find(self, text: str) -> Contamination | None:
        """The earliest benchmark n-gram in ``text``, or None when it is clean."""
        tokens = tokenize(text)
        if len(tokens) < self.lengths[-1] or not len(self.hashes):
            return None
        th = _token_hashes(tokens)
        best: tuple[int, int, int] | None = None  # (position, length, owner)
        for k in self.lengths:
            windows = window_hashes(th, k)
            top = windows >> _BITMAP_SHIFT
            maybe = np.flatnonzero(
                (self._bitmap[top >> np.uint64(3)] >> (top & np.uint64(7)).astype(np.uint8)) & 1
            )
            if not len(maybe):
                continue
            slot = np.searchsorted(self.hashes, windows[maybe])
            np.minimum(slot, len(self.hashes) - 1, out=slot)
            hits = np.flatnonzero(self.hashes[slot] == windows[maybe])
            if len(hits) and (best is None or maybe[hits[0]] < best[0]):
                best = (int(maybe[hits[0]]), k, int(self.owners[slot[hits[0]]]))
        if best is None:
            return None
        pos, k, owner = best
        benchmark, item_id = self.items[owner]
        return Contamination(benchmark, item_id, " ".join(tokens[pos : pos + k]))


# Function words and quiz boilerplate: n-grams made of them are common, not specific to an item.
# fmt: off
_FUNCTION_WORDS = frozenset({
    "a", "an", "the", "of", "to", "in", "on", "at", "by", "for", "from", "with", "about", "as", "into",
    "than", "then", "and", "or", "but", "not", "no", "nor", "is", "are", "was", "were", "be", "been",
    "being", "do", "does", "did", "has", "have", "had", "it", "its", "this", "that", "these", "those",
    "there", "which", "what", "who", "whom", "whose", "when", "where", "why", "how", "all", "any", "each",
    "some", "most", "more", "other", "such", "only", "same", "so", "too", "very", "can", "will", "would",
    "should", "could", "may", "might", "must", "s", "following", "statement", "statements", "true",
    "false", "correct", "incorrect", "best", "answer", "question", "except",
})
# fmt: on


def _content_counts(tokens: list[str] | tuple[str, ...], k: int) -> np.ndarray:
    """Content tokens (not function words, digits or single characters) in every k-token window."""
    flags = np.fromiter(
        (len(t) > 1 and not t.isdigit() and t not in _FUNCTION_WORDS for t in tokens),
        dtype=np.int32,
        count=len(tokens),
    )
    cumulative = np.concatenate(([0], np.cumsum(flags)))
    return cumulative[k:] - cumulative[: max(len(tokens) - k + 1, 0)]


def _item_digest(item: BenchmarkItem) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in (item.benchmark, item.item_id, *item.segments, item.context):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.digest()


def _read_jsonl(path: Path) -> Iterator[BenchmarkItem]:
    """Generic ``{benchmark, id, text}`` lines, or GSM8K ``{question, answer}`` / HumanEval records."""
    opener = gzip.open if path.name.endswith(".gz") else open
    split = path.name.split(".")[0].partition("-")[2] or "item"  # gsm8k-test.jsonl -> test
    with opener(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if not line.strip():
                continue
            rec = json.loads(line)
            if "text" in rec:
                if not rec.get("benchmark"):
                    raise ValueError(f"{path}:{i + 1}: a benchmark record needs a 'benchmark' name")
                yield BenchmarkItem(str(rec["benchmark"]), str(rec.get("id", i)), (rec["text"],))
            elif "question" in rec and "answer" in rec:
                answer = _GSM8K_CALC.sub("", rec["answer"])
                yield BenchmarkItem("gsm8k", f"{split}/{i}", (rec["question"], answer))
            elif "prompt" in rec and "canonical_solution" in rec:
                item_id = str(rec.get("task_id", i))
                yield BenchmarkItem("humaneval", item_id, (rec["prompt"],), rec["canonical_solution"])
            else:
                raise ValueError(f"{path}:{i + 1}: unknown benchmark record keys {sorted(rec)}")


def _read_mmlu_csv(path: Path) -> Iterator[BenchmarkItem]:
    """MMLU rows ``question, A, B, C, D, answer`` (no header); ids ``split/subject/row``."""
    split = path.parent.name
    subject = path.stem.removesuffix(f"_{split}")
    with open(path, newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.reader(fh)):
            if len(row) < 3:
                raise ValueError(f"{path}:{i + 1}: expected question, choices..., answer")
            yield BenchmarkItem("mmlu", f"{split}/{subject}/{i}", (row[0], " ".join(row[1:-1])))


def read_benchmarks(path: str | Path) -> Iterator[BenchmarkItem]:
    """Items of a benchmark file (.jsonl, .jsonl.gz, MMLU .csv) or of every such file under a directory."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.name.endswith((".jsonl", ".jsonl.gz", ".csv")))
        if not files:
            raise ValueError(f"no benchmark files (.jsonl, .jsonl.gz, .csv) under {path}")
        for f in files:
            yield from read_benchmarks(f)
    elif path.name.endswith(".csv"):
        yield from _read_mmlu_csv(path)
    elif path.name.endswith((".jsonl", ".jsonl.gz")):
        yield from _read_jsonl(path)
    elif not path.exists():
        raise FileNotFoundError(f"benchmark path {path} does not exist")
    else:
        raise ValueError(f"unsupported benchmark file {path} (want .jsonl, .jsonl.gz, .csv or a directory)")


@lru_cache(maxsize=8)
def _cached_index(paths: tuple[str, ...], n: int, min_tokens: int) -> BenchmarkIndex:
    return BenchmarkIndex((item for p in paths for item in read_benchmarks(p)), n=n, min_tokens=min_tokens)


def load_benchmarks(paths: list[str] | None = None, n: int = 13, min_tokens: int = 8) -> BenchmarkIndex:
    """The index of ``paths`` (None: the bundled GSM8K, MMLU and HumanEval test sets).

    Built once per process for the same resolved paths and parameters, so every
    partition a worker processes reuses it (edit a file: start a new process).
    """
    resolved = (DEFAULT_BENCHMARKS_DIR,) if paths is None else tuple(Path(p) for p in paths)
    return _cached_index(tuple(str(p.resolve()) for p in resolved), n, min_tokens)


@dataclass(frozen=True)
class DecontamConfig:
    """Benchmark sets (None: the bundled defaults) and n-gram sizes."""

    benchmark_paths: tuple[str, ...] | None = None
    n: int = 13
    min_tokens: int = 8  # shorter items are not indexed: too likely to occur by chance

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if not 1 <= self.min_tokens <= self.n:
            raise ValueError(f"min_tokens must be in [1, n={self.n}], got {self.min_tokens}")
        if isinstance(self.benchmark_paths, str):
            raise ValueError("benchmark_paths must be a list of paths, not a string")
        if self.benchmark_paths is not None:
            object.__setattr__(self, "benchmark_paths", tuple(self.benchmark_paths))


class Decontaminator(Filter):
    """Rejects documents that contain a benchmark item's n-gram (reason ``contaminated``)."""

    name = "decontam"

    def __init__(self, config: DecontamConfig | None = None, index: BenchmarkIndex | None = None):
        self.config = config or DecontamConfig()
        paths = None if self.config.benchmark_paths is None else list(self.config.benchmark_paths)
        self.index = index or load_benchmarks(paths, n=self.config.n, min_tokens=self.config.min_tokens)

    @property
    def version(self) -> str:
        """Content hash of the benchmark set: record it with a partition to detect staleness."""
        return self.index.version

    def check(self, doc: Doc) -> tuple[str, str] | None:
        hit = self.index.find(doc.get("text") or "")
        return None if hit is None else ("contaminated", hit.detail())
