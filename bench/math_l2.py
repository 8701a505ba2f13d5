"""Math L2: does the math quality scorer rank good math above poor math?

Labelled math quality set, assembled here from (README in ``bench/data/math_l2``):

* ``mathoverflow-short``: 36 MathOverflow question + short answer pairs labelled by hand: an answer that
  explains (a derivation, a proof, a construction) is good, a bare number, a pointer to a paper or a
  search engine, or a comment is poor (``bench/data/math_l2/quality.jsonl``);
* ``planetmath``: 40 PlanetMath entries outside the demo corpus (good);
* ``fragments``: the 6 arXiv fragments and the 2 non-prose pages of the math L1 dev set (poor);
* ``off-domain``: 10 records of the shared Stack Exchange sample (Spanish programming Q&A; poor for math).

Scorers: the L2 math classifier given with ``--classifier`` (the demo's: ``DATA_ROOT/models/l2_classifier/
math/VERSION``), and with ``--llm-judge`` the raw LLM judge with the math prompt (mathematical depth,
reasoning completeness, educational value). AUC overall and per slice against the good slices.

    python bench/math_l2.py --classifier DIR [--llm-judge]
"""

from __future__ import annotations

import argparse
import json
import time

from _util import REPO, SHARED, save, table
from math_l1 import load_dev

from tier_assets.curation.l2.annotate import Annotator
from tier_assets.curation.l2.distill import QualityClassifier, roc_auc
from tier_assets.curation.l2.score import score_texts
from tier_assets.curation.models.llm import load_llm

DATA = REPO / "bench/data/math_l2"
DEMO_PLANETMATH = REPO / "tier_assets/demo_data/math/planetmath-number-theory-demo.jsonl"


def load_quality_set() -> list[dict]:
    """Rows {id, slice, text, label}: label 1 = good math, 0 = poor."""
    rows = [dict(r, slice=r["source"]) for r in map(json.loads, (DATA / "quality.jsonl").read_text().splitlines())]
    in_demo = {json.loads(line)["id"] for line in DEMO_PLANETMATH.read_text().splitlines()}
    planetmath = [json.loads(line) for line in (SHARED / "math/planetmath-number-theory-sample.jsonl").read_text()
                  .splitlines()]
    outside = sorted((r for r in planetmath if r["id"] not in in_demo), key=lambda r: r["id"])[::6][:40]
    rows += [{"id": r["id"], "slice": "planetmath", "label": 1, "text": r["text"]} for r in outside]
    dev = [d for d in load_dev() if d["label"] == "bad"]
    rows += [{"id": d["doc_id"], "slice": "fragments", "label": 0, "text": d["text"]} for d in dev]
    se = (SHARED / "math/stackexchange-sample-b.jsonl").read_text().splitlines()[:10]
    rows += [{"id": f"stackexchange-sample-b#{i}", "slice": "off-domain", "label": 0, "text": json.loads(line)["text"]}
             for i, line in enumerate(se)]
    return rows


def aucs(rows: list[dict], scores: list[float | None]) -> dict[str, float | None]:
    """AUC overall, and of each poor slice and the hand-labelled slice against the good documents."""
    pairs = [(s, r) for s, r in zip(scores, rows, strict=True) if s is not None]
    out = {"all": roc_auc([s for s, _ in pairs], [r["label"] for _, r in pairs])}
    good = [(s, r) for s, r in pairs if r["label"] == 1]
    for name in ("fragments", "off-domain"):
        sub = good + [(s, r) for s, r in pairs if r["slice"] == name]
        out[f"good vs {name}"] = roc_auc([s for s, _ in sub], [r["label"] for _, r in sub])
    hand = [(s, r) for s, r in pairs if r["slice"] == "mathoverflow-short"]
    out["mathoverflow-short (explains vs does not)"] = roc_auc([s for s, _ in hand], [r["label"] for _, r in hand])
    return {k: None if v is None else round(v, 3) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classifier", help="an L2 math classifier directory (card.json, weights.npz)")
    parser.add_argument("--llm-judge", action="store_true", help="also score with the raw LLM judge (slow on CPU)")
    args = parser.parse_args()
    rows = load_quality_set()
    texts = [r["text"] for r in rows]
    counts = {s: [sum(1 for r in rows if r["slice"] == s and r["label"] == lab) for lab in (1, 0)]
              for s in dict.fromkeys(r["slice"] for r in rows)}
    print("slices (good, poor):", counts)
    results = {}
    if args.classifier:
        clf = QualityClassifier.load(args.classifier)
        start = time.perf_counter()
        scores, _ = score_texts(texts, clf)
        results["l2_classifier"] = {"version": clf.version, "seeds": clf.card.get("n_seeds"),
                                    "seconds": round(time.perf_counter() - start, 1),
                                    **aucs(rows, [float(s) for s in scores])}
    if args.llm_judge:
        annotator = Annotator(load_llm(), domain="math")
        start = time.perf_counter()
        judged = annotator.judge(texts)
        results["llm_judge"] = {**annotator.llm.info, "seconds": round(time.perf_counter() - start, 1),
                                "unscored": sum(j[0] is None for j in judged), **aucs(rows, [j[0] for j in judged])}
    for name, res in results.items():
        print(f"\n{name}")
        print(table([{"measure": k, "value": v} for k, v in res.items()]))
    save("math_l2", {"slices": counts, "results": results})


if __name__ == "__main__":
    main()
