"""L4 knowledge checks: draw real candidates for the labelled dev set, and report before / after figures.

``python bench/l4_knowledge.py candidates`` runs today's rule extractor (no knowledge
checks) over real documents of ../shared/data (never holdout/) and the Python
standard library, and writes a deterministic sample per domain to
``bench/data/l4/candidates.jsonl`` for labelling (``docs/l4-labelling.md``).
``python bench/l4_knowledge.py report`` evaluates the labelled set
``bench/data/l4/dev.jsonl``: the checks against no checks, on the tune and the report split;
``report --judge`` adds the knowledge judge alone and rules + judge (the embedded LLM's answers are
cached in ``bench/data/l4/knowledge_judge_cache.jsonl``, so a re-run asks nothing).
``python bench/l4_knowledge.py fit`` fits the judge's combiner and threshold on the tune split only
and prints the constants for ``curation/l4/judge.py``.
``python bench/l4_knowledge.py fit-scorer`` fits the knowledge scorer (``curation/l4/scorer.py``) on the
tune split only (C and threshold by 5-fold cross-validation on tune) and writes its weights;
``python bench/l4_knowledge.py scorer-domains`` decides per domain, from tune cross-validation only,
whether the L4 stage uses the scorer and at which threshold (``recipes/l4.yaml``);
``report --scorer`` adds rules + scorer as the L4 recipe sets it. ``python bench/l4_knowledge.py speed``
measures items/s of the checks and of the scorer (embedding included) over the whole dev set.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tier_assets.curation.l4.checks import knowledge_problems
from tier_assets.curation.l4.evaluate import evaluate_file, read_split, scorer_thresholds
from tier_assets.curation.l4.extract import kind_and_subject, rule_items
from tier_assets.curation.l4.judge import COMBINER_KEYS, features, fit_combiner, knowledge_margins
from tier_assets.curation.l4.scorer import KnowledgeScorer, feature_rows, fit_scorer
from tier_assets.curation.l4.settings import L4Settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / "data" / "l4"
PER_DOMAIN = {"en": 90, "zh": 60, "math": 60, "code": 40}
STDLIB_MODULES = ["email/message.py", "json/decoder.py", "collections/__init__.py", "textwrap.py", "heapq.py",
                  "fractions.py", "statistics.py", "csv.py", "difflib.py", "http/cookies.py", "logging/__init__.py"]
# the second draw (``candidates --more``): sources and modules the first did not read, and more of every domain
MORE_PER_DOMAIN = {"en": 170, "zh": 110, "math": 130, "code": 85}
MORE_STDLIB_MODULES = ["argparse.py", "pathlib.py", "shutil.py", "json/encoder.py", "tarfile.py", "string.py",
                       "calendar.py", "datetime.py", "decimal.py", "random.py", "urllib/parse.py", "configparser.py",
                       "smtplib.py", "ftplib.py", "queue.py", "threading.py", "sched.py", "pprint.py", "shlex.py",
                       "gettext.py", "ipaddress.py", "uuid.py", "base64.py", "bisect.py", "inspect.py"]


def _jsonl(path: Path) -> Iterator[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def _docs() -> Iterator[dict]:
    """(domain, source, text) documents: real web, Chinese article, math and stdlib text."""
    for name in ("redpajama-cc-2023-06-sample.jsonl", "redpajama-c4-sample.jsonl", "ccnet-en-head-0091.jsonl.gz",
                 "cc-main-2019-30-dolma.jsonl.gz", "pile-nih-sample.jsonl"):
        for i, row in enumerate(_jsonl(SHARED / "web" / name)):
            yield {"domain": "en", "source": f"web/{name}#{i}", "text": row["text"]}
    for kind in ("article", "forum"):
        base = json.loads((SHARED / "html" / "magic-html-zh" / kind / "base.json").read_text(encoding="utf-8"))
        for sha, row in sorted(base.items()):
            yield {"domain": "zh", "source": f"html/magic-html-zh/{kind}#{sha[:12]}", "text": row["content"]}
    for name in ("planetmath-number-theory-sample.jsonl", "arxiv-latex-sample.jsonl", "stackexchange-sample-b.jsonl"):
        for i, row in enumerate(_jsonl(SHARED / "math" / name)):
            yield {"domain": "math", "source": f"math/{name}#{i}", "text": row["text"]}
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for module in STDLIB_MODULES:
        yield {"domain": "code", "source": f"stdlib/{module}", "text": (stdlib / module).read_text(encoding="utf-8"),
               "source_file": f"python-stdlib/{module}", "meta": {"language": "python"}}


def _more_docs() -> Iterator[dict]:
    """The second draw's documents: more web and news text, the same zh and math files, more stdlib modules."""
    for doc in _docs():
        if doc["domain"] != "code":
            yield doc
    for name in ("ccnet-en-head-0174.jsonl.gz", "pile-uspto-sample.jsonl"):
        for i, row in enumerate(_jsonl(SHARED / "web" / name)):
            yield {"domain": "en", "source": f"web/{name}#{i}", "text": row["text"]}
    truth = json.loads((SHARED / "html" / "article-extraction-benchmark" / "ground-truth.json").read_text("utf-8"))
    for sha, row in sorted(truth.items()):
        yield {"domain": "en", "source": f"html/article-extraction-benchmark#{sha[:12]}", "text": row["articleBody"]}
    for i, row in enumerate(_jsonl(SHARED / "quality-dev" / "dclm-human-quality-dev.jsonl")):
        yield {"domain": "en", "source": f"quality-dev/dclm-human-quality-dev.jsonl#{i}", "text": row["text"]}
    yield from ({"domain": "math", "source": f"math/stackexchange-sample-a.jsonl#{i}", "text": row["text"]}
                for i, row in enumerate(_jsonl(SHARED / "math" / "stackexchange-sample-a.jsonl")))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for module in MORE_STDLIB_MODULES:
        yield {"domain": "code", "source": f"stdlib/{module}", "text": (stdlib / module).read_text(encoding="utf-8"),
               "source_file": f"python-stdlib/{module}", "meta": {"language": "python"}}


def _rank(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def candidates() -> list[dict]:
    """Every domain's rule-extracted items, deduplicated, a hash-ordered sample of ``PER_DOMAIN`` each."""
    config = L4Settings(max_items_per_doc=50)
    by_domain: dict[str, dict[str, dict]] = {d: {} for d in PER_DOMAIN}
    for doc in _docs():
        record = {"doc_id": doc["source"], "batch": "dev", "tier": "L2", **doc}
        for item in rule_items(record, config):
            by_domain[doc["domain"]].setdefault(item.text, {"text": item.text, "domain": doc["domain"],
                                                             "kind": item.kind, "source": doc["source"]})
    out = []
    for domain, items in by_domain.items():
        ranked = sorted(items.values(), key=lambda r: _rank(r["text"]))
        out += [{**r, "split": "tune" if int(_rank(r["source"] + r["text"])[:2], 16) % 2 else "report"}
                for r in ranked[:PER_DOMAIN[domain]]]
    return out


def more_candidates() -> list[dict]:
    """The second draw: items not already in ``dev.jsonl``, a hash-ordered sample of ``MORE_PER_DOMAIN`` each,
    split tune / report by a hash of the text alone."""
    seen = {r["text"] for r in read_split(OUT / "dev.jsonl")}
    config = L4Settings(max_items_per_doc=50)
    by_domain: dict[str, dict[str, dict]] = {d: {} for d in MORE_PER_DOMAIN}
    for doc in _more_docs():
        record = {"doc_id": doc["source"], "batch": "dev", "tier": "L2", **doc}
        for item in rule_items(record, config):
            if item.text not in seen:
                by_domain[doc["domain"]].setdefault(item.text, {"text": item.text, "domain": doc["domain"],
                                                                 "extracted_kind": item.kind,
                                                                 "source": doc["source"]})
    out = []
    for domain, items in by_domain.items():
        ranked = sorted(items.values(), key=lambda r: _rank("more:" + r["text"]))
        out += [{**r, "split": "tune" if int(_rank(r["text"])[:2], 16) % 2 else "report"}
                for r in ranked[:MORE_PER_DOMAIN[domain]]]
    return out


JUDGE_CACHE = OUT / "knowledge_judge_cache.jsonl"
THRESHOLDS = [round(0.5 + 0.05 * i, 2) for i in range(10)]


def margins(split: str) -> list[float | None]:
    """The embedded LLM's knowledge margins of one split's rows, through the bench's LLM cache."""
    from tier_assets.curation.llm_cache import LLMCache
    from tier_assets.curation.models.llm import load_llm

    rows = read_split(OUT / "dev.jsonl", split)
    return knowledge_margins(load_llm(None), [r["text"] for r in rows], LLMCache(JUDGE_CACHE))


def fit() -> dict:
    """Combiner (on the tune items that pass the rules) and its threshold: the highest tune precision among
    thresholds keeping >= 60% of the tune true items; the judge alone: Platt scaling on every tune row."""
    rows = read_split(OUT / "dev.jsonl", "tune")
    feats, passed = [], []
    for row, margin in zip(rows, margins("tune"), strict=True):
        kind, subject = kind_and_subject(row["text"], row["domain"])
        feats.append(features(row["text"], kind, float(margin)))
        passed.append(not knowledge_problems(row["text"], row["domain"], kind, subject))
    labels = [r["label"] for r in rows]
    combiner = fit_combiner([f for f, p in zip(feats, passed, strict=True) if p],
                            [y for y, p in zip(labels, passed, strict=True) if p], COMBINER_KEYS)
    judge_only = fit_combiner(feats, labels, ["margin"])
    true = sum(labels)
    best = (-1.0, THRESHOLDS[0])
    for threshold in THRESHOLDS:
        keep = [p and combiner.probability(f) >= threshold for f, p in zip(feats, passed, strict=True)]
        hits = sum(k and y for k, y in zip(keep, labels, strict=True))
        if sum(keep) and hits / true >= 0.6:
            best = max(best, (hits / sum(keep), threshold), key=lambda b: b[0])
    return {"COMBINER": combiner, "MIN_KNOWLEDGE": best[1], "tune_precision": round(best[0], 4),
            "JUDGE_ONLY": judge_only}


SCORER_C = (0.01, 0.03, 0.1, 0.3)
SCORER_THRESHOLDS = [round(0.2 + 0.05 * i, 2) for i in range(13)]
SCORER_MIN_RECALL = 0.75
DOMAIN_MIN_RECALL = 0.6  # issue 11: precision at recall >= 0.60


def _embedder():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tier_assets.curation.models.embedder import get_embedder

    return get_embedder()


def _scored_rows(rows: list[dict], embedder) -> tuple[list[dict[str, float]], list[bool]]:
    """Feature rows of labelled rows and whether the rules pass each."""
    kinds = [kind_and_subject(r["text"], r["domain"]) for r in rows]
    feats = feature_rows([r["text"] for r in rows], [r["domain"] for r in rows], [s for _, s in kinds],
                         embedder.encode([r["text"] for r in rows]))
    passed = [not knowledge_problems(r["text"], r["domain"], k, s) for r, (k, s) in zip(rows, kinds, strict=True)]
    return feats, passed


def _cv_probabilities(feats: list[dict[str, float]], labels: list[int], c: float) -> dict[int, float]:
    """Each row's P(knowledge) from the models that did not see it, averaged (5 folds, 3 shuffles)."""
    import numpy as np

    cv: dict[int, list[float]] = {}
    for seed in range(3):
        order = np.random.RandomState(seed).permutation(len(feats))
        for k in range(5):
            test = sorted(order[k::5].tolist())
            held = set(test)
            train = [i for i in range(len(feats)) if i not in held]
            model = fit_scorer([feats[i] for i in train], [labels[i] for i in train], c, 0.5, {})
            for i, p in zip(test, model.probabilities([feats[i] for i in test]), strict=True):
                cv.setdefault(i, []).append(float(p))
    return {i: sum(v) / len(v) for i, v in cv.items()}


def _tune_scorer_rows() -> tuple[list[dict], list[dict[str, float]], list[bool], list[int]]:
    """The tune split's en / math / code rows, their feature rows, whether the rules pass each, their labels."""
    rows = [r for r in read_split(OUT / "dev.jsonl", "tune") if r["domain"] != "zh"]
    feats, passed = _scored_rows(rows, _embedder())
    return rows, feats, passed, [r["label"] for r in rows]


def fit_knowledge_scorer() -> KnowledgeScorer:
    """The scorer fit on the tune split's en / math / code rows. C: the best mean cross-validated AUC over the
    rows the rules pass; threshold: the best cross-validated precision of rules + scorer that keeps
    >= ``SCORER_MIN_RECALL`` of the tune true items (5 folds, 3 shuffles)."""
    from sklearn.metrics import roc_auc_score

    rows, feats, passed, labels = _tune_scorer_rows()
    best: tuple[float, float, dict[int, float]] | None = None
    for c in SCORER_C:
        mean = _cv_probabilities(feats, labels, c)
        kept = [i for i in range(len(rows)) if passed[i]]
        auc = float(roc_auc_score([labels[i] for i in kept], [mean[i] for i in kept]))
        if best is None or auc > best[0]:
            best = (auc, c, mean)
    assert best is not None
    auc, c, mean = best
    true = sum(labels)
    choice = (-1.0, SCORER_THRESHOLDS[0], 0.0)
    for threshold in SCORER_THRESHOLDS:
        keep = [passed[i] and mean[i] >= threshold for i in range(len(rows))]
        hits = sum(k and y for k, y in zip(keep, labels, strict=True))
        if sum(keep) and hits / true >= SCORER_MIN_RECALL and hits / sum(keep) > choice[0]:
            choice = (hits / sum(keep), threshold, hits / true)
    fit = {"split": "tune", "rows": len(rows), "c": c, "cv_auc_rules_passed": round(auc, 4),
           "cv_precision": round(choice[0], 4), "cv_recall": round(choice[2], 4), "min_recall": SCORER_MIN_RECALL}
    return fit_scorer(feats, labels, c, choice[1], fit)


def _precision_recall(idx: list[int], keep: list[bool], labels: list[int]) -> dict[str, Any]:
    hits = sum(1 for i in idx if labels[i] and keep[i])
    kept, true = sum(keep[i] for i in idx), sum(labels[i] for i in idx)
    return {"precision": round(hits / kept, 4) if kept else None, "recall": round(hits / true, 4) if true else None,
            "kept": kept}


def scorer_domains() -> dict[str, Any]:
    """Per domain (en, math, code), from tune cross-validation only (the shipped C): the rules alone, and rules +
    scorer at each threshold of ``SCORER_THRESHOLDS``. The scorer is on in a domain when some threshold keeping
    >= ``DOMAIN_MIN_RECALL`` of its tune true items has a higher precision than the rules alone; the threshold
    is the one with the highest such precision (then the higher recall)."""
    rows, feats, passed, labels = _tune_scorer_rows()
    mean = _cv_probabilities(feats, labels, KnowledgeScorer.load().fit["c"])
    out: dict[str, Any] = {}
    for domain in ("en", "math", "code"):
        idx = [i for i, r in enumerate(rows) if r["domain"] == domain]
        rules = _precision_recall(idx, passed, labels)
        table = {t: _precision_recall(idx, [passed[i] and mean[i] >= t for i in range(len(rows))], labels)
                 for t in SCORER_THRESHOLDS}
        ok = [(v["precision"], v["recall"], t) for t, v in table.items()
              if v["precision"] is not None and v["recall"] is not None and v["recall"] >= DOMAIN_MIN_RECALL]
        best = max(ok, default=None)
        on = best is not None and rules["precision"] is not None and best[0] > rules["precision"]
        out[domain] = {"rules": rules, "knowledge_scorer": on, "min_knowledge_score": best[2] if on else None,
                       "with_scorer": table[best[2]] if on else None, "by_threshold": table}
    return out


def speed() -> dict:
    """Items/s of the rule checks (kind, subject and checks) and of the scorer (embedding included), whole dev set."""
    rows = read_split(OUT / "dev.jsonl")
    started = time.perf_counter()
    for _ in range(5):
        for r in rows:
            kind, subject = kind_and_subject(r["text"], r["domain"])
            knowledge_problems(r["text"], r["domain"], kind, subject)
    rules = 5 * len(rows) / (time.perf_counter() - started)
    scorer, embedder = KnowledgeScorer.load(), _embedder()
    embedder.encode([rows[0]["text"]])
    started = time.perf_counter()
    scorer.score([r["text"] for r in rows], [r["domain"] for r in rows],
                 [kind_and_subject(r["text"], r["domain"])[1] for r in rows], embedder)
    scored = len(rows) / (time.perf_counter() - started)
    return {"rows": len(rows), "checks_items_per_s": round(rules, 1), "scorer_items_per_s": round(scored, 1),
            "threads": os.environ.get("OMP_NUM_THREADS")}


def main(argv: list[str]) -> int:
    if argv[:1] == ["candidates"]:
        OUT.mkdir(parents=True, exist_ok=True)
        more = "--more" in argv
        rows = more_candidates() if more else candidates()
        path = OUT / ("candidates-more.jsonl" if more else "candidates.jsonl")
        with open(path, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        print(f"{len(rows)} candidates -> {path}")
        return 0
    if argv[:1] == ["report"]:
        judge, scored = "--judge" in argv, "--scorer" in argv
        for split in ("tune", "report"):
            report = evaluate_file(OUT / "dev.jsonl", split=split, margins=margins(split) if judge else None,
                                   embedder=_embedder() if scored else None,
                                   min_scores=scorer_thresholds() if scored else None)
            keys = (["split", "with_checks", "without_checks", "reasons"] + (["judge_only", "with_judge"] * judge)
                    + ["with_scorer"] * scored)
            print(json.dumps({k: report[k] for k in keys}, ensure_ascii=False))
        return 0
    if argv[:1] == ["fit-scorer"]:
        scorer = fit_knowledge_scorer()
        scorer.save()
        print(json.dumps({"threshold": scorer.threshold, **scorer.fit}))
        return 0
    if argv[:1] == ["scorer-domains"]:
        print(json.dumps(scorer_domains()))
        return 0
    if argv[:1] == ["speed"]:
        print(json.dumps(speed()))
        return 0
    if argv[:1] == ["fit"]:
        print(fit())
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
