"""Train one domain's L2 classifier: sample seeds from L1, annotate them with the LLM, distil, save.

A classifier lives under ``{root}/models/l2_classifier/{domain}/{version}/``
(``weights.npz``, ``card.json`` and ``seeds.jsonl``: every seed with its label,
signals and, for unscored ones, the reason). ``current.json`` names the version
L2 scores with; it changes only when a new classifier is trained, and L2
partitions scored with another version are then stale.

Annotations are cached per domain (``annotations.jsonl``, keyed by annotator
identity, ``max_chars`` and text hash), so retraining after a new batch only pays
the LLM for seeds it has not judged before.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tier_assets.curation.l2.annotate import Annotation, Annotator
from tier_assets.curation.l2.distill import QualityClassifier, Seed, distill
from tier_assets.curation.l2.prompts import PROMPT_VERSION
from tier_assets.curation.l2.recipe import L2Recipe
from tier_assets.curation.l2.reference import reference_documents
from tier_assets.curation.l2.seeds import hash_rank, sample_seeds
from tier_assets.curation.models.llm import LLM
from tier_assets.curation.storage import TierStore

Progress = Callable[[str], None]
MIN_SEEDS = 4


def classifier_dir(root: Path, domain: str) -> Path:
    return Path(root) / "models" / "l2_classifier" / domain


def current_version(root: Path, domain: str) -> str | None:
    """The version ``current.json`` names for ``domain``, or None before the first training."""
    pointer = classifier_dir(root, domain) / "current.json"
    return json.loads(pointer.read_text())["version"] if pointer.exists() else None


def load_current(root: Path, domain: str) -> QualityClassifier:
    """The domain's current classifier; a clear error when none was trained yet."""
    version = current_version(root, domain)
    if version is None:
        raise FileNotFoundError(f"no L2 classifier for domain {domain!r} under {classifier_dir(root, domain)}: "
                                f"materialize l2_classifier[{domain}] first")
    return QualityClassifier.load(classifier_dir(root, domain) / version)


def l1_documents(store: TierStore, domain: str) -> list[dict[str, Any]]:
    """Every kept L1 document of ``domain`` across batches: the population seeds are drawn from."""
    docs = []
    for ref in store.partitions("L1"):
        if ref.domain == domain:
            docs += store.read(ref, columns=["doc_id", "batch", "text"]).to_pylist()
    return docs


def seed_documents(store: TierStore, recipe: L2Recipe) -> list[dict[str, Any]]:
    """Stratified L1 sample plus (a seeded sample of) the recipe's reference chunks."""
    sampled = [{**d, "source": "sample"} for d in sample_seeds(l1_documents(store, recipe.domain), recipe.seeds,
                                                                recipe.seed)]
    refs = reference_documents(recipe.reference_paths)
    if recipe.max_references is not None:
        refs = sorted(refs, key=lambda d: hash_rank(recipe.seed, d["doc_id"]))[: recipe.max_references]
    return sampled + [{**d, "batch": None, "source": "reference"} for d in refs]


class AnnotationCache:
    """Annotations of one domain keyed by (annotator identity, max_chars, text), appended to a JSONL file."""

    def __init__(self, path: Path, annotator: Annotator):
        self.path = path
        self.prefix = json.dumps({**annotator.identity, "max_chars": annotator.max_chars}, sort_keys=True)
        self.items: dict[str, Annotation] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                self.items[row["key"]] = Annotation(**row["annotation"])

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.prefix}\x1f{text}".encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, text: str) -> Annotation | None:
        return self.items.get(self.key(text))

    def add(self, texts: Sequence[str], annotations: Sequence[Annotation]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for text, ann in zip(texts, annotations, strict=True):
                if ann.reason and ann.reason.startswith("llm error"):
                    continue  # transient: ask again next time
                self.items[self.key(text)] = ann
                f.write(json.dumps({"key": self.key(text), "annotation": ann.to_dict()}, ensure_ascii=False) + "\n")


def annotate_with_progress(annotator: Annotator, texts: Sequence[str], cache: AnnotationCache | None = None,
                           chunk: int = 8, progress: Progress | None = None) -> tuple[list[Annotation], int]:
    """Annotations of ``texts`` in order (cached ones reused) and how many the LLM made now."""
    found: list[Annotation | None] = [cache.get(t) if cache else None for t in texts]
    todo = [i for i, a in enumerate(found) if a is None]
    start = time.perf_counter()
    for k in range(0, len(todo), chunk):
        idx = todo[k:k + chunk]
        anns = annotator.annotate([texts[i] for i in idx])
        if cache:
            cache.add([texts[i] for i in idx], anns)
        for i, ann in zip(idx, anns, strict=True):
            found[i] = ann
        if progress:
            done = min(k + chunk, len(todo))
            rate = done / max(time.perf_counter() - start, 1e-9)
            progress(f"L2 annotation: {done}/{len(todo)} new ({len(texts) - len(todo)} cached), "
                     f"{rate:.2f} docs/s, ETA {(len(todo) - done) / max(rate, 1e-9):.0f}s")
    return [a for a in found if a is not None], len(todo)


@dataclass
class TrainResult:
    classifier: QualityClassifier
    path: Path
    seeds_in: int
    seeds_scored: int
    annotated_now: int
    unscored: dict[str, int]
    annotation_seconds: float
    seconds: float


def train_classifier(store: TierStore, recipe: L2Recipe, llm: LLM, progress: Progress | None = None,
                     annotator: Annotator | None = None) -> TrainResult:
    """Sample, annotate, distil and save ``recipe.domain``'s classifier; make it the current one."""
    start = time.perf_counter()
    annotator = annotator or Annotator(llm, domain=recipe.domain, max_chars=recipe.max_chars,
                                       injection_penalty=recipe.injection_penalty)
    docs = seed_documents(store, recipe)
    if progress:
        n_ref = sum(d["source"] == "reference" for d in docs)
        progress(f"L2 classifier {recipe.domain}: {len(docs) - n_ref} sampled L1 seeds + {n_ref} reference chunks; "
                 f"annotator {annotator.identity}")
    base = classifier_dir(store.root, recipe.domain)
    cache = AnnotationCache(base / "annotations.jsonl", annotator)
    t0 = time.perf_counter()
    anns, annotated_now = annotate_with_progress(annotator, [d["text"] for d in docs], cache, progress=progress)
    annotation_seconds = time.perf_counter() - t0
    seeds = [Seed(str(d["doc_id"]), d["text"], float(a.score), d["source"])
             for d, a in zip(docs, anns, strict=True) if a.score is not None]
    unscored = Counter(str(a.reason) for a in anns if a.score is None)
    if len(seeds) < MIN_SEEDS:
        raise ValueError(
            f"L2 classifier {recipe.domain}: only {len(seeds)} annotated seeds (need {MIN_SEEDS}) from "
            f"{len(docs)} candidates ({sum(d['source'] == 'sample' for d in docs)} L1 documents sampled); "
            f"unscored: {dict(unscored)}. Add L1 data or reference files (recipes/l2.yaml: references)")
    clf = distill(seeds, annotator.identity, PROMPT_VERSION, recipe.domain, recipe.heldout_fraction)
    clf.card["seed_sources"] = dict(Counter(d["source"] for d in docs))
    clf.card["unscored_seeds"] = dict(unscored)
    path = clf.save(base / clf.version)
    write_seeds(path / "seeds.jsonl", docs, anns)
    set_current(base, clf.version)
    return TrainResult(clf, path, len(docs), len(seeds), annotated_now, dict(unscored), annotation_seconds,
                       time.perf_counter() - start)


def write_seeds(path: Path, docs: Sequence[dict[str, Any]], anns: Sequence[Annotation]) -> None:
    """Every seed with its annotation (label, judge score, signals, tags, unscored reason), for inspection."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for d, a in zip(docs, anns, strict=True):
            row = {"doc_id": d["doc_id"], "batch": d.get("batch"), "source": d["source"], **a.to_dict(),
                   "text": d["text"][:500]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def set_current(base: Path, version: str) -> None:
    tmp = base / ".current.json.tmp"
    tmp.write_text(json.dumps({"version": version, "set_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
    tmp.replace(base / "current.json")
