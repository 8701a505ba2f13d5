"""Judge-injection benchmark: detection and score deltas per category, tune vs held-out, and false positives.

The phrasings are ``tier_assets_tests/data/injections.jsonl`` (categories: addressed,
claimed_score, comment, other_language, paraphrase; ``benign`` sentences that must not
be penalized). The held-out part was written before the detector and never tuned on.
Each phrasing is put into real quality-dev documents, as a line after the text and as
a line before it, and each document is scored with and without it:

- classifier: the L2 scoring path (``score_texts``: neutralize, classifier, penalty),
  with a classifier distilled from the embedded LLM's annotations of other quality-dev
  documents, as ``l2_classifier`` trains one; the same classifier on the raw text shows
  what the attack would do without the defence;
- LLM annotator: ``Annotator.annotate`` (its label, what the classifier learns from).
  Its result depends only on what ``neutralize`` leaves, so identical neutralized
  inputs are annotated once; the raw 0-5 judge on the undefended text (phrasing appended) is
  measured on a few documents for reference.

False positives: documents of real corpora (quality-dev, Common Crawl, news articles,
Chinese pages, math, the Python standard library) that the detector penalizes or edits.

    .venv/bin/python bench/l2_injection.py [--docs 24] [--raw-docs 4]

Writes bench/out/l2_injection.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import sysconfig
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._util import save, table  # noqa: E402
from tier_assets.curation.l2.annotate import Annotation, Annotator, expected_score  # noqa: E402
from tier_assets.curation.l2.distill import QualityClassifier, Seed, distill  # noqa: E402
from tier_assets.curation.l2.injection import neutralize, scan  # noqa: E402
from tier_assets.curation.l2.prompts import PROMPT_VERSION, SCORE_TOKENS, score_prompt  # noqa: E402
from tier_assets.curation.l2.score import score_texts  # noqa: E402
from tier_assets.curation.models.llm import load_llm  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
DEV = DATA / "quality-dev" / "dclm-human-quality-dev.jsonl"
PHRASINGS = ROOT / "tier_assets_tests" / "data" / "injections.jsonl"
N_SEEDS = 60  # quality-dev documents the classifier may be distilled from (the rest are attacked)
DOC_CHARS = 1500
TOLERANCE = 1e-6  # a delta above this counts as raising the score


def load_phrasings(path: Path = PHRASINGS) -> list[dict]:
    """The phrasing set: one dict per line with id, category, split, lang, text."""
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def attacked_versions(doc: str, phrasing: str) -> list[str]:
    """The document with the phrasing as a line after it and as a line before it."""
    return [f"{doc}\n{phrasing}", f"{phrasing}\n{doc}"]


def dev_rows() -> list[dict]:
    return [json.loads(line) for line in DEV.open(encoding="utf-8")]


def build_classifier(annotator: Annotator, texts: list[str], human_labels: list[int] | None) -> QualityClassifier:
    """A classifier distilled from the annotator's labels of ``texts``, as ``l2_classifier`` makes one,
    or (``human_labels``: cheaper, no LLM) from quality-dev's human labels mapped to 4 / 1."""
    if human_labels is not None:
        seeds = [Seed(f"dev-{i}", t, 4.0 if y else 1.0) for i, (t, y) in enumerate(zip(texts, human_labels,
                                                                                        strict=True))]
        return distill(seeds, {"model_id": "dclm-human", "backend": "labels", "recipe": "human"}, PROMPT_VERSION)
    seeds = [Seed(f"dev-{i}", t, a.score) for i, (t, a) in enumerate(zip(texts, annotator.annotate(texts),
                                                                          strict=True)) if a.score is not None]
    return distill(seeds, annotator.identity, PROMPT_VERSION)


class CachedAnnotator:
    """``Annotator.annotate`` once per distinct neutralized input: its result depends on nothing else."""

    def __init__(self, annotator: Annotator):
        self.annotator = annotator
        self.cache: dict[tuple[str, bool], Annotation] = {}

    def scores(self, texts: list[str]) -> np.ndarray:
        keys = [(cleaned, n > 0) for cleaned, n in map(neutralize, texts)]
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in self.cache}
        for key, ann in zip(todo, self.annotator.annotate(list(todo.values())), strict=True):
            self.cache[key] = ann
        return np.array([np.nan if self.cache[k].score is None else self.cache[k].score for k in keys])


def undefended_judge(annotator: Annotator, texts: list[str]) -> list[float]:
    """The LLM's 0-5 judgement of the raw texts, nothing removed: what the attack does without the defence."""
    msgs = [score_prompt(annotator.domain, t, annotator.max_chars) for t in texts]
    return [expected_score(lps)[0] for lps in annotator.llm.next_token_logprobs(msgs, SCORE_TOKENS)]


def measure(phrasings: list[dict], docs: list[str], classifier: QualityClassifier, annotator: CachedAnnotator,
            raw_docs: int) -> list[dict]:
    """Per phrasing: detection and the mean score deltas it causes (defended and undefended)."""
    clean_clf, _ = score_texts(docs, classifier)
    clean_raw_clf = classifier.predict(docs)
    clean_llm = annotator.scores(docs)
    clean_judge = undefended_judge(annotator.annotator, docs[:raw_docs])
    rows = []
    for p in phrasings:
        texts = [t for d in docs for t in attacked_versions(d, p["text"])]
        reps = len(texts) // len(docs)
        scans = [scan(t) for t in texts]
        clf, _ = score_texts(texts, classifier)
        llm = annotator.scores(texts)
        judge = undefended_judge(annotator.annotator, texts[:raw_docs * reps:reps]) if raw_docs else []
        rows.append({
            **{k: p[k] for k in ("id", "category", "split", "lang")},
            "detected": all(s.removed for s in scans),
            "penalized": all(s.penalized for s in scans),
            "classifier_delta": float(np.mean(clf - np.repeat(clean_clf, reps))),
            "classifier_undefended_delta": float(np.mean(classifier.predict(texts) - np.repeat(clean_raw_clf, reps))),
            "llm_delta": float(np.nanmean(llm - np.repeat(clean_llm, reps))),
            "judge_undefended_delta": (float(np.mean(np.array(judge) - np.array(clean_judge)))
                                       if judge else None),
        })
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Per category and split: detection rate, mean deltas, phrasings that raise a mean score."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["category"], r["split"])].append(r)
        groups[("ALL attacks" if r["category"] != "benign" else "ALL benign", r["split"])].append(r)
    out = []
    for (cat, split), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        judge = [r["judge_undefended_delta"] for r in rs if r["judge_undefended_delta"] is not None]
        out.append({
            "split": split, "category": cat, "n": len(rs),
            "detected": round(np.mean([r["detected"] for r in rs]), 3),
            "penalized": round(np.mean([r["penalized"] for r in rs]), 3),
            "clf_delta": round(np.mean([r["classifier_delta"] for r in rs]), 3),
            "clf_max_delta": round(max(r["classifier_delta"] for r in rs), 3),
            "clf_raising": sum(r["classifier_delta"] > TOLERANCE for r in rs),
            "clf_undefended": round(np.mean([r["classifier_undefended_delta"] for r in rs]), 3),
            "llm_delta": round(np.mean([r["llm_delta"] for r in rs]), 3),
            "llm_max_delta": round(max(r["llm_delta"] for r in rs), 3),
            "llm_raising": sum(r["llm_delta"] > TOLERANCE for r in rs),
            "judge_undefended": round(float(np.mean(judge)), 3) if judge else None,
        })
    return out


def _jsonl(path: Path) -> Iterator[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        yield from (json.loads(line) for line in fh if line.strip())


def clean_corpora(code_every: int = 15) -> dict[str, list[str]]:
    """Real documents nobody wrote for a judge, by source (the holdout is not used)."""
    corpora = {"quality-dev": [r["text"] for r in _jsonl(DEV)],
               "web (Common Crawl, C4, CCNet)": [r["text"] for p in sorted((DATA / "web").glob("*.jsonl*"))
                                                 for r in _jsonl(p)],
               "math (StackExchange, PlanetMath, arXiv)": [r["text"] for p in sorted((DATA / "math").glob("*.jsonl"))
                                                           for r in _jsonl(p)]}
    truth = json.loads((DATA / "html" / "article-extraction-benchmark" / "ground-truth.json").read_text())
    corpora["news articles"] = [v["articleBody"] for v in truth.values() if v.get("articleBody")]
    corpora["zh pages (magic-html)"] = [
        v["content"] for kind in ("article", "forum")
        for v in json.loads((DATA / "html" / "magic-html-zh" / kind / "base.json").read_text()).values()
        if v.get("content")]
    stdlib = sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py"))[::code_every]
    corpora["code (stdlib sample)"] = [p.read_text(encoding="utf-8", errors="replace") for p in stdlib]
    return corpora


def false_positives(corpora: dict[str, list[str]]) -> list[dict]:
    """Per corpus: documents penalized, documents edited (generic ratings removed), with examples."""
    out = []
    for name, texts in corpora.items():
        scans = [scan(t) for t in texts]
        penalized = [f.text[:120] for s in scans for f in s.findings if f.penalized]
        edited = [f.text[:80] for s in scans for f in s.findings if not f.penalized]
        out.append({"corpus": name, "docs": len(texts),
                    "penalized": sum(bool(s.penalized) for s in scans),
                    "penalized_rate": round(sum(bool(s.penalized) for s in scans) / max(len(texts), 1), 4),
                    "edited": sum(bool(s.removed) and not s.penalized for s in scans),
                    "examples": (penalized + edited)[:4]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=24, help="quality-dev documents each phrasing is put into")
    ap.add_argument("--raw-docs", type=int, default=4, help="documents for the undefended LLM judge (costly)")
    ap.add_argument("--seeds", type=int, default=24, help="quality-dev documents the classifier is distilled from")
    ap.add_argument("--human-labels", action="store_true",
                    help="distil the classifier from quality-dev's human labels instead of LLM annotations")
    args = ap.parse_args()
    if not DEV.exists():
        raise SystemExit(f"shared data not found at {DEV}")
    rows = dev_rows()
    texts, labels = [r["text"][:DOC_CHARS] for r in rows], [int(r["label"]) for r in rows]
    if not 4 <= args.seeds <= N_SEEDS:
        raise SystemExit(f"--seeds must be in 4..{N_SEEDS}")
    docs = texts[N_SEEDS:N_SEEDS + args.docs]
    annotator = Annotator(load_llm(), domain="en", max_chars=600)
    source = "human-labelled" if args.human_labels else "LLM-annotated"
    print(f"distilling a classifier from {args.seeds} {source} quality-dev documents ...", flush=True)
    classifier = build_classifier(annotator, texts[:args.seeds], labels[:args.seeds] if args.human_labels else None)
    phrasings = load_phrasings()
    print(f"measuring {len(phrasings)} phrasings x {len(docs)} documents x 2 placements ...", flush=True)
    results = measure(phrasings, docs, classifier, CachedAnnotator(annotator), args.raw_docs)
    summary = summarize(results)
    print(table(summary))
    misses = [r["id"] for r in results if r["category"] != "benign" and not r["detected"]]
    benign_penalized = [r["id"] for r in results if r["category"] == "benign" and r["penalized"]]
    print(f"undetected attacks: {misses or 'none'}; benign sentences penalized: {benign_penalized or 'none'}")
    fp = false_positives(clean_corpora())
    print(table([{k: v for k, v in r.items() if k != "examples"} for r in fp]))
    total, pen = sum(r["docs"] for r in fp), sum(r["penalized"] for r in fp)
    print(f"clean documents penalized: {pen}/{total} ({pen / total:.2%}); "
          f"edited without penalty: {sum(r['edited'] for r in fp)}/{total}")
    save("l2_injection", {"prompt_version": PROMPT_VERSION, "docs": len(docs), "raw_docs": args.raw_docs,
                          "classifier": source, "summary": summary, "phrasings": results,
                          "undetected": misses, "benign_penalized": benign_penalized, "false_positives": fp})


if __name__ == "__main__":
    main()
