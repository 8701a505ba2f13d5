"""Evaluation sets that cannot leak: held-out text checked against every arm, MMLU items for multiple choice.

Held-out text is screened with the L1 decontamination index built the other way
round: the arms' training documents are indexed and every evaluation text is
looked up, so a text sharing a 13-gram with any arm is removed and counted. When
more than ``max_overlap`` of the set overlaps, it is not a held-out set and the run
is refused. Benchmark items are kept out of training by ``arms.export_arm``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tier_assets.curation.l1.decontam import DEFAULT_BENCHMARKS_DIR, BenchmarkIndex, BenchmarkItem

DEFAULT_HELDOUT = Path(__file__).resolve().parents[2] / "tier_value_data" / "en-heldout.jsonl.gz"
MMLU_CHOICES = 4


class EvalSetLeak(ValueError):
    """The evaluation set overlaps the training data of an arm: scores on it would not be held out."""


@dataclass(frozen=True)
class HeldOut:
    """Held-out texts left after the overlap check, and what the check removed."""

    texts: list[str]
    total: int
    removed: list[str]  # "item i overlaps arm X doc Y" per removed text
    sha256: str  # of the texts as loaded, before removal

    @property
    def removed_count(self) -> int:
        return len(self.removed)


@dataclass(frozen=True)
class MCItem:
    item_id: str
    question: str
    choices: tuple[str, ...]
    answer: int


def load_texts(path: str | Path | None) -> list[str]:
    """Texts of a JSONL / JSONL.gz file with a ``text`` field per line (None: the shipped held-out set)."""
    path = Path(path) if path is not None else DEFAULT_HELDOUT
    if not path.is_file():
        raise FileNotFoundError(f"evaluation file {path} does not exist")
    opener = gzip.open if path.name.endswith(".gz") else open
    texts = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if not line.strip():
                continue
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ValueError(f"{path}:{i + 1}: expected a JSON object with a 'text' string")
            if record["text"].strip():
                texts.append(record["text"])
    if not texts:
        raise ValueError(f"evaluation file {path} holds no text")
    return texts


def training_index(arms: Iterable[tuple[str, list[str], list[str]]]) -> BenchmarkIndex:
    """13-gram index of every training document, ``(arm name, doc ids, texts)`` per arm."""
    return BenchmarkIndex(
        BenchmarkItem(f"arm:{name}", doc_id, (text,))
        for name, doc_ids, texts in arms
        for doc_id, text in zip(doc_ids, texts, strict=True)
    )


def screen_heldout(texts: list[str], index: BenchmarkIndex, max_overlap: float) -> HeldOut:
    """Remove texts that share an n-gram with training data; refuse the set when too much of it does."""
    digest = hashlib.sha256("\x1e".join(texts).encode("utf-8", "surrogatepass")).hexdigest()
    kept, removed = [], []
    for i, text in enumerate(texts):
        hit = index.find(text)
        if hit is None:
            kept.append(text)
        else:
            removed.append(f'item {i} overlaps {hit.benchmark} doc {hit.item_id}: "{hit.ngram}"')
    if len(removed) > max_overlap * len(texts) or not kept:
        raise EvalSetLeak(
            f"evaluation set overlaps training data: {len(removed)} of {len(texts)} texts share "
            f"13-grams with an arm (limit {max_overlap:.0%}), e.g. {removed[0]}; "
            "it is not held out, use other text"
        )
    return HeldOut(kept, len(texts), removed, digest)


def load_mmlu(limit: int, benchmarks_dir: Path = DEFAULT_BENCHMARKS_DIR) -> list[MCItem]:
    """``limit`` MMLU test items, a fixed hash-ordered sample across subjects (the same in every run)."""
    items = []
    for path in sorted((benchmarks_dir / "mmlu" / "test").glob("*_test.csv")):
        subject = path.stem.removesuffix("_test")
        with open(path, newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.reader(fh)):
                if len(row) != MMLU_CHOICES + 2 or row[-1] not in "ABCD":
                    raise ValueError(f"{path}:{i + 1}: expected question, 4 choices, answer letter")
                items.append(MCItem(f"test/{subject}/{i}", row[0], tuple(row[1:-1]), "ABCD".index(row[-1])))
    items.sort(key=lambda it: hashlib.md5(it.item_id.encode()).hexdigest())
    return items[:limit]
