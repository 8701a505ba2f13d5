"""L2 scoring benchmark: speed, distillation fidelity and agreement with human labels, in one run.

1. Seeds: English Common Crawl documents from ../shared/data/web (an "en" L1
   stand-in: py3langid-filtered, one batch per source file), stratified-sampled,
   plus reference chunks (Wikipedia, news articles, NIH / USPTO / arXiv /
   StackExchange), all annotated by the default annotator (embedded SmolLM2,
   calibrated ensemble label rule) and distilled into the default classifier.
2. Speed: LLM annotation and classifier scoring of the same quality-dev documents.
3. Agreement (AUC) with the DCLM human labels on quality-dev and on the holdout for
   each single signal (LLM 0-5 judge, Yes/No judge, minus perplexity, length), the
   annotator's ensemble label and the default L2 scorer. The holdout is only
   measured here: nothing is fitted on it. The scorer's dev figure is in-sample
   for the label rule's calibrated weights, so a cross-fitted dev figure (weights
   refit on 4/5 of dev, scored on the other 1/5) is reported next to it.

    .venv/bin/python bench/l2_scoring.py [--cache /tmp/l2_annotations.jsonl]

Writes bench/out/l2_scoring.json and the classifier to bench/out/l2_classifier/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tier_assets.curation.l2.annotate import (  # noqa: E402
    SMALL_MODEL_WEB,
    SMALL_MODEL_WEB_KEYS,
    Annotation,
    Annotator,
    select_label_rule,
)
from tier_assets.curation.l2.distill import Seed, distill, featurize, roc_auc  # noqa: E402
from tier_assets.curation.l2.evaluate import load_labelled  # noqa: E402
from tier_assets.curation.l2.prompts import PROMPT_VERSION, neutralize  # noqa: E402
from tier_assets.curation.l2.reference import reference_documents  # noqa: E402
from tier_assets.curation.l2.score import score_texts  # noqa: E402
from tier_assets.curation.l2.seeds import sample_seeds  # noqa: E402
from tier_assets.curation.schema import stable_id  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
WEB_FILES = ["web/cc-main-2019-30-dolma.jsonl.gz", "web/ccnet-en-head-0091.jsonl.gz",
             "web/ccnet-en-head-0174.jsonl.gz", "web/redpajama-c4-sample.jsonl",
             "web/redpajama-cc-2023-06-sample.jsonl"]
REFERENCE_FILES = (
    [f"html/dclm-pages/wikipedia_paragraph{i}.html" for i in range(1, 6)]
    + ["web/pile-nih-sample.jsonl", "web/pile-uspto-sample.jsonl", "math/arxiv-latex-sample.jsonl",
       "math/stackexchange-sample-a.jsonl", "math/stackexchange-sample-b.jsonl"]
)


class AnnotationCache:
    """Annotations keyed by (model, backend, prompt version, text), appended to a JSONL file so reruns skip the LLM.

    The key leaves the label rule out: what the LLM produced (judge score, signals) does
    not depend on it, so a cached annotation is relabelled under the current rule
    (``relabel``) and refitting the rule needs no new LLM calls.
    """

    def __init__(self, annotator: Annotator, path: str | None):
        self.annotator, self.path, self.items = annotator, path, {}
        self.ident = json.dumps({k: v for k, v in annotator.identity.items() if k != "recipe"}, sort_keys=True)
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    row = json.loads(line)
                    self.items[row["key"]] = Annotation(**row["annotation"])

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.ident}\x1f{text}".encode("utf-8", "surrogatepass")).hexdigest()

    def relabel(self, ann: Annotation) -> Annotation:
        """``ann`` with its seed label recomputed under the annotator's current label rule."""
        rule = self.annotator.label_rule
        if ann.judge_score is None or not ann.signals or not rule.llm_signals <= ann.signals.keys():
            return ann
        label = rule.label(ann.signals)
        if ann.injections:
            label = max(0.0, label - self.annotator.injection_penalty)
        return Annotation(**{**ann.to_dict(), "score": round(label, 4), "recipe": rule.name})

    def annotate(self, texts: list[str], chunk: int = 16, label: str = "") -> list[Annotation]:
        todo = [t for t in dict.fromkeys(texts) if self.key(t) not in self.items]
        start = time.perf_counter()
        for i in range(0, len(todo), chunk):
            part = todo[i:i + chunk]
            anns = self.annotator.annotate(part)
            rows = []
            for text, ann in zip(part, anns, strict=True):
                self.items[self.key(text)] = ann
                rows.append({"key": self.key(text), "annotation": ann.to_dict()})
            if self.path:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.writelines(json.dumps(r) + "\n" for r in rows)
            print(f"  {label}: annotated {i + len(part)}/{len(todo)} in {time.perf_counter() - start:.0f}s",
                  flush=True)
        return [self.relabel(self.items[self.key(t)]) for t in texts]


def english_web_docs() -> list[dict]:
    """Common Crawl documents in English, one batch per source file (an en L1 partition stand-in)."""
    import py3langid

    from tier_assets.curation.l2.reference import read_texts

    docs = []
    for rel in WEB_FILES:
        for i, text in enumerate(read_texts(DATA / rel)):
            if len(text) >= 200 and py3langid.classify(text[:2000])[0] == "en":
                docs.append({"doc_id": stable_id("web", rel, i), "batch": Path(rel).name, "text": text})
    return docs


def references() -> list[dict]:
    docs = reference_documents([DATA / p for p in REFERENCE_FILES], max_chunks_per_doc=8)
    import py3langid

    gt = json.loads((DATA / "html/article-extraction-benchmark/ground-truth.json").read_text())
    articles = [{"doc_id": stable_id("reference", "article", k), "text": v["articleBody"], "source": "articles"}
                for k, v in sorted(gt.items()) if len(v.get("articleBody") or "") >= 200]
    return [d for d in docs + articles[:60] if py3langid.classify(d["text"][:2000])[0] == "en"]


def single_signals(texts: list[str], anns: list[Annotation]) -> dict[str, list[float | None]]:
    def sig(name: str) -> list[float | None]:
        return [a.signals.get(name) if a.signals else None for a in anns]

    return {
        "llm_judge_expected_0_5": [a.judge_score for a in anns],
        "llm_yes_no_logprob_margin": sig("yes_no"),
        "minus_llm_perplexity_256": [-math.exp(-v) if v is not None else None for v in sig("neg_log_ppl")],
        "length_chars": [float(len(t)) for t in texts],
        "annotator_ensemble_label": [a.score for a in anns],
    }


def auc_of(scores: list[float | None], labels: list[int]) -> dict:
    pairs = [(s, y) for s, y in zip(scores, labels, strict=True) if s is not None and math.isfinite(s)]
    return {"auc": roc_auc([p[0] for p in pairs], [p[1] for p in pairs]), "n": len(pairs)}


def cross_fitted_dev_auc(dev_anns: list[Annotation], dev_labels: list[int], dev_texts: list[str],
                         seed_anns: list[Annotation], seed_docs: list[dict], identity: dict,
                         spec: dict, folds: int = 5) -> dict:
    """Dev AUC of the whole label rule with the calibration (weights and their penalty) never seeing the scored fold."""
    rng = np.random.default_rng(0)
    fold_of = rng.permutation(np.arange(len(dev_labels)) % folds)
    ok = [a.score is not None for a in dev_anns]
    emb, stats = featurize([neutralize(t)[0] for t in dev_texts], spec)
    seed_emb, seed_stats = featurize([d["text"] for d in seed_docs], spec)
    pred = np.full(len(dev_labels), np.nan)
    for k in range(folds):
        train = [i for i in range(len(dev_labels)) if fold_of[i] != k and ok[i]]
        rule, _ = select_label_rule([dev_anns[i].signals for i in train], [dev_labels[i] for i in train],
                                    SMALL_MODEL_WEB_KEYS, f"crossfit-{k}")
        seeds = [Seed(d["doc_id"], d["text"], rule.label(a.signals), d.get("source", "sample"))
                 for d, a in zip(seed_docs, seed_anns, strict=True)]
        clf = distill(seeds, {**identity, "recipe": rule.name}, PROMPT_VERSION,
                      features=(seed_emb, seed_stats), label_rule=rule)
        test = fold_of == k
        pred[test] = clf.predict_features(emb[test], stats[test])
    return {"auc": roc_auc(pred, dev_labels), "folds": folds}


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` runs (other jobs on a shared machine only add time)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=None, help="JSONL cache of annotations (reruns skip the LLM)")
    ap.add_argument("--seeds", type=int, default=300, help="sampled web seeds (plus reference chunks)")
    ap.add_argument("--speed-docs", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats; the fastest counts")
    ap.add_argument("--limit", type=int, default=None, help="smoke run: cap every document set at N")
    ap.add_argument("--out", default=str(ROOT / "bench/out/l2_scoring.json"))
    ap.add_argument("--fit-recipe", action="store_true",
                    help="only refit SMALL_MODEL_WEB's weights on quality-dev (select_label_rule) and print them")
    args = ap.parse_args()

    import torch

    annotator = Annotator(domain="en")
    assert annotator.label_rule is SMALL_MODEL_WEB
    cache = AnnotationCache(annotator, args.cache)
    dev_texts, dev_labels = load_labelled(DATA / "quality-dev/dclm-human-quality-dev.jsonl")
    hold_texts, hold_labels = load_labelled(DATA / "holdout/dclm-human-quality-agreement.jsonl", args.limit)
    dev_texts, dev_labels = dev_texts[: args.limit], dev_labels[: args.limit]
    if args.fit_recipe:  # the procedure behind SMALL_MODEL_WEB (quality-dev only, never the holdout)
        fitted = [(a.signals, y) for a, y in zip(cache.annotate(dev_texts, label="quality_dev"), dev_labels,
                                                 strict=True) if a.judge_score is not None]
        rule, c = select_label_rule([f[0] for f in fitted], [f[1] for f in fitted], SMALL_MODEL_WEB_KEYS,
                                    SMALL_MODEL_WEB.name)
        print(json.dumps({"n": len(fitted), "c": c, "recipe": rule.__dict__}, indent=2))
        return

    # ---- 1. seeds -> annotations -> classifier
    web = english_web_docs()
    sampled = sample_seeds(web, n=args.seeds, seed=0)
    refs = references()[: args.limit]
    seed_docs = [{**d, "source": "sample"} for d in sampled] + [{**d, "source": "reference"} for d in refs]
    print(f"seeds: {len(sampled)} sampled from {len(web)} English web docs + {len(refs)} reference chunks")
    seed_anns = cache.annotate([d["text"] for d in seed_docs], label="seeds")
    unscored = {}
    for a in seed_anns:
        if a.score is None:
            unscored[a.reason or "?"] = unscored.get(a.reason or "?", 0) + 1
    kept = [(d, a) for d, a in zip(seed_docs, seed_anns, strict=True) if a.score is not None]
    seeds = [Seed(d["doc_id"], d["text"], float(a.score), d["source"]) for d, a in kept]
    t0 = time.perf_counter()
    clf = distill(seeds, annotator.identity, PROMPT_VERSION)
    distill_s = time.perf_counter() - t0
    clf.save(ROOT / "bench/out/l2_classifier")

    # ---- 2. speed on the same documents: warm models, best of --repeats (the machine is shared)
    speed_texts = dev_texts[: args.speed_docs]
    annotator.annotate(speed_texts[:2])
    score_texts(speed_texts[:4], clf)
    llm_s = best_time(lambda: annotator.annotate(speed_texts), args.repeats)
    clf_s = best_time(lambda: score_texts(speed_texts, clf), args.repeats)

    # ---- 3. human-label agreement
    report_sets = {}
    for name, texts, labels in (("quality_dev", dev_texts, dev_labels), ("holdout", hold_texts, hold_labels)):
        anns = cache.annotate(texts, label=name)
        signals = single_signals(texts, anns)
        scores, _ = score_texts(texts, clf)
        signals["l2_scorer_default"] = list(map(float, scores))
        report_sets[name] = {"n": len(texts), "positives": int(sum(labels)),
                             "auc": {k: auc_of(v, labels) for k, v in signals.items()},
                             "l2_accuracy_at_3": float(np.mean((scores >= 3.0) == (np.array(labels) == 1)))}
        if name == "quality_dev":
            dev_anns = anns
    report_sets["quality_dev"]["l2_scorer_cross_fitted"] = cross_fitted_dev_auc(
        dev_anns, dev_labels, dev_texts, [a for _, a in kept], [d for d, _ in kept], annotator.identity,
        clf.card["features"])

    n = len(speed_texts)
    report = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "note": "2 CPU cores shared with other jobs; timings are best-of-repeats"},
        "annotator": annotator.identity,
        "classifier": {"version": clf.version, "dir": "bench/out/l2_classifier", "n_seeds": len(seeds),
                       "n_reference_seeds": sum(s.source == "reference" for s in seeds),
                       "unscored_seeds": unscored, "distill_seconds": round(distill_s, 3),
                       "embedding_scale": clf.card["embedding_scale"],
                       "heldout_agreement_with_seed_labels": clf.card["metrics"]},
        "speed": {"docs": n, "repeats": args.repeats, "llm_annotation_docs_per_s": n / llm_s, "classifier_docs_per_s": n / clf_s,
                  "speedup_per_doc": llm_s / clf_s},
        "human_labels": report_sets,
        "judge_addressing_sentences_removed": {"quality_dev": sum(neutralize(t)[1] for t in dev_texts),
                                               "holdout": sum(neutralize(t)[1] for t in hold_texts)},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
