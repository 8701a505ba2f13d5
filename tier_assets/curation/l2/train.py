"""Train one domain's L2 classifier: sample seeds from L1, annotate them with the LLM, distil, save.

A classifier lives under ``{root}/models/l2_classifier/{domain}/{version}/``
(``weights.npz``, ``card.json`` and ``seeds.jsonl``: every seed with its label,
signals and, for unscored ones, the reason). ``current.json`` names the version
L2 scores with; it changes only when a new classifier is trained, and L2
partitions scored with another version are then stale.

Annotations are cached per domain in the shared LLM cache
(``{root}/cache/llm/l2/{domain}/annotations.jsonl``, keyed by document id, text hash,
annotator and model identity and every annotator setting), so retraining after a new
batch, or after a killed run, only pays the LLM for seeds it has not judged before.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tier_assets.curation.atomic import write_json_atomic, write_lines_atomic
from tier_assets.curation.l2.annotate import Annotation, Annotator
from tier_assets.curation.l2.distill import QualityClassifier, Seed, distill
from tier_assets.curation.l2.prompts import PROMPT_VERSION
from tier_assets.curation.l2.reference import reference_documents
from tier_assets.curation.l2.seeds import hash_rank, sample_seeds
from tier_assets.curation.l2.settings import L2Settings
from tier_assets.curation.llm_cache import CallKey, LLMCache, cache_path, call_key
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


def seed_documents(store: TierStore, recipe: L2Settings) -> list[dict[str, Any]]:
    """Stratified L1 sample plus (a seeded sample of) the recipe's reference chunks."""
    sampled = [{**d, "source": "sample"} for d in sample_seeds(l1_documents(store, recipe.domain), recipe.seeds,
                                                                recipe.seed)]
    refs = reference_documents(recipe.reference_paths)
    if recipe.max_references is not None:
        refs = sorted(refs, key=lambda d: hash_rank(recipe.seed, d["doc_id"]))[: recipe.max_references]
    return sampled + [{**d, "batch": None, "source": "reference"} for d in refs]


def annotation_cache_path(root: Path, domain: str) -> Path:
    return cache_path(root, "L2", domain, "annotations")


class AnnotationCache:
    """Annotations of one domain in the shared LLM cache (``llm_cache``): one record per document."""

    TASK = "l2:annotate"

    def __init__(self, path: Path, annotator: Annotator):
        self.cache = LLMCache(path)
        self.model = {**annotator.llm.identity, **annotator.identity}
        self.settings = {"domain": annotator.domain, "max_chars": annotator.max_chars, "min_mass": annotator.min_mass,
                         "injection_penalty": annotator.injection_penalty, "with_tags": annotator.with_tags,
                         "fallback_max_tokens": annotator.fallback_max_tokens}

    def key(self, text: str, doc_id: str | None = None) -> CallKey:
        return call_key(self.TASK, doc_id, text, self.model, self.model["prompt_version"], self.settings)

    def get(self, text: str, doc_id: str | None = None) -> Annotation | None:
        stored = self.cache.get(self.key(text, doc_id))
        return None if stored is None else Annotation(**stored)

    def add(self, texts: Sequence[str], annotations: Sequence[Annotation],
            doc_ids: Sequence[str | None] | None = None) -> None:
        """Store one chunk's annotations (one write); failed ones ("llm error") are asked again next time."""
        ids = doc_ids if doc_ids is not None else [None] * len(texts)
        self.cache.put([(self.key(text, doc_id), ann.to_dict())
                        for text, doc_id, ann in zip(texts, ids, annotations, strict=True)
                        if not (ann.reason and ann.reason.startswith("llm error"))])


def annotate_with_progress(annotator: Annotator, texts: Sequence[str], cache: AnnotationCache | None = None,
                           chunk: int = 8, progress: Progress | None = None,
                           doc_ids: Sequence[str | None] | None = None) -> tuple[list[Annotation], int]:
    """Annotations of ``texts`` in order (cached ones reused) and how many the LLM made now."""
    ids = list(doc_ids) if doc_ids is not None else [None] * len(texts)
    found: list[Annotation | None] = [cache.get(t, i) if cache else None for t, i in zip(texts, ids, strict=True)]
    todo = [i for i, a in enumerate(found) if a is None]
    start = time.perf_counter()
    for k in range(0, len(todo), chunk):
        idx = todo[k:k + chunk]
        anns = annotator.annotate([texts[i] for i in idx])
        if cache:
            cache.add([texts[i] for i in idx], anns, [ids[i] for i in idx])
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


def train_classifier(store: TierStore, recipe: L2Settings, llm: LLM, progress: Progress | None = None,
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
    cache = AnnotationCache(annotation_cache_path(store.root, recipe.domain), annotator)
    t0 = time.perf_counter()
    anns, annotated_now = annotate_with_progress(annotator, [d["text"] for d in docs], cache, progress=progress,
                                                 doc_ids=[str(d["doc_id"]) for d in docs])
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
    write_lines_atomic(path, (
        json.dumps({"doc_id": d["doc_id"], "batch": d.get("batch"), "source": d["source"], **a.to_dict(),
                    "text": d["text"][:500]}, ensure_ascii=False)
        for d, a in zip(docs, anns, strict=True)))


def set_current(base: Path, version: str) -> None:
    write_json_atomic(base / "current.json",
                      {"version": version, "set_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
