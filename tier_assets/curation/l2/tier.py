"""L2 for one partition as a list of stages: score every L1 document with the domain's classifier, select.

``ScoreQuality`` is a record stage (a document's score depends on it alone);
``SelectBest`` is a partition step (the top fraction needs every score). Selected
documents are the L2 tier; the others go to L2's rejected set with their score
and the rule that excluded them, so kept + rejected = L1 input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tier_assets.curation.engines import engine_from_env
from tier_assets.curation.l2.distill import QualityClassifier
from tier_assets.curation.l2.score import STAGE, score_texts, selection_mask
from tier_assets.curation.l2.settings import L2Settings
from tier_assets.curation.pipeline import (
    Doc,
    Models,
    PartitionStep,
    Progress,
    RecordStage,
    Resources,
    StageStats,
    StepResult,
    add_signals,
    reject,
)
from tier_assets.curation.schema import derive_doc_id, loads
from tier_assets.curation.storage import PartitionRef, TierStore


def from_l1(row: dict[str, Any]) -> Doc:
    """An L2 working document from an L1 record: new id, parent pointer, dict-valued JSON columns."""
    doc = dict(row)
    doc["parent_ids"] = [row["doc_id"]]
    doc["doc_id"] = derive_doc_id("L2", [row["doc_id"]])
    doc["tier"] = "L2"
    doc["signals"] = loads(row.get("signals")) or {}
    doc["models"] = loads(row.get("models")) or {}
    return doc


class ScoreQuality(RecordStage):
    """The classifier's 0-5 score per document (judge-addressing sentences removed and penalized first)."""

    name = "l2_score"
    resources = Resources(cpus=1.0, memory_gb=2.0, models=("classifier",))

    def __init__(self, injection_penalty: float = 1.0):
        self.injection_penalty = injection_penalty
        self.classifier: QualityClassifier | None = None

    def setup(self, models: Models) -> None:
        self.classifier = models.require("classifier", self.name)

    def teardown(self) -> None:
        self.classifier = None

    def process(self, docs: list[Doc]) -> StepResult:
        assert self.classifier is not None, "setup() first"
        scores, injections = score_texts([d["text"] for d in docs], self.classifier, self.injection_penalty)
        card = self.classifier.card
        model_info = {"classifier_version": self.classifier.version, "annotator": card["annotator"],
                      "prompt_version": card["prompt_version"]}
        for doc, score, n_inj in zip(docs, scores, injections, strict=True):
            doc["score"] = float(score)
            add_signals(doc, "l2", {"score": float(score), "injections": n_inj})
            if not isinstance(doc.get("models"), dict):
                doc["models"] = {}
            doc["models"]["l2"] = model_info
        return StepResult(docs, [])


class SelectBest(PartitionStep):
    """Keeps ``score >= threshold``, or the best ``top_fraction`` of the partition (ties by doc id)."""

    name = STAGE

    def __init__(self, threshold: float | None, top_fraction: float | None):
        self.threshold, self.top_fraction = threshold, top_fraction

    def run(self, docs: list[Doc]) -> StepResult:
        scores = np.array([d["score"] for d in docs], dtype=np.float64)
        mask, cut = selection_mask(scores, [str(d["doc_id"]) for d in docs], self.threshold, self.top_fraction)
        rule = (f"score >= {cut:.4f}" if self.threshold is not None
                else f"top {self.top_fraction:.2%} (cut {cut:.4f})")
        reason = "below_threshold" if self.threshold is not None else "outside_top_fraction"
        kept, rejected = [], []
        for doc, selected in zip(docs, mask, strict=True):
            add_signals(doc, "l2", {"selected": bool(selected)})
            if selected:
                kept.append(doc)
            else:
                rejected.append(reject(doc, STAGE, reason, f"score={doc['score']:.4f}; kept if {rule}"))
        return StepResult(kept, rejected)


def l2_stages(settings: L2Settings) -> list[RecordStage | PartitionStep]:
    """L2 as a list of stages: score each document, then select across the partition."""
    return [ScoreQuality(settings.injection_penalty), SelectBest(settings.threshold, settings.top_fraction)]


@dataclass
class L2Stats:
    l1_input: int = 0
    kept: int = 0
    rejected: int = 0
    injections: int = 0
    score_histogram: dict[str, int] = field(default_factory=dict)
    stages: dict[str, StageStats] = field(default_factory=dict)
    seconds: float = 0.0


def run_l2_partition(store: TierStore, settings: L2Settings, batch: str, classifier: QualityClassifier,
                     progress: Progress | None = None) -> L2Stats:
    """Score and select (settings.domain, batch); write L2 kept and rejected atomically."""
    start = time.perf_counter()
    domain = settings.domain
    docs = [from_l1(r) for r in store.read(PartitionRef("L1", domain, batch)).to_pylist()]
    if progress:
        progress(f"L2 {domain}/{batch}: {len(docs)} L1 documents, classifier {classifier.version}")
    pipeline = engine_from_env().pipeline(l2_stages(settings), settings.records_per_batch)
    result = pipeline.run(docs, progress, Models(classifier=classifier))
    ref = PartitionRef("L2", domain, batch)
    store.write_partition(ref, result.kept, result.rejected)
    scores = np.array([d["score"] for d in docs], dtype=np.float64)
    hist, edges = np.histogram(scores, bins=5, range=(0.0, 5.0))
    return L2Stats(
        l1_input=len(docs), kept=len(result.kept), rejected=len(result.rejected),
        injections=sum(1 for d in docs if d["signals"]["l2"]["injections"]),
        score_histogram={f"{lo:.0f}-{hi:.0f}": int(n) for lo, hi, n in zip(edges, edges[1:], hist, strict=False)},
        stages=pipeline.stats, seconds=time.perf_counter() - start,
    )
