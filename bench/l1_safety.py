"""L1 content safety on the labelled dev set: recall on unsafe pages, false rejections of safe pages, docs/s.

The set (``bench/data/l1_safety/labelled.jsonl``, rules in docs/safety-labelling.md) holds real English and
Chinese pages from ../shared/data and hand-written unsafe pages, each in a ``tune`` or ``report`` split;
thresholds and lists were set looking at ``tune`` only, and the figures to quote are ``report``'s. Every
document runs through L1's steps before dedup in L1's order (URL safety, mappers, language id, content terms,
toxicity, rule filters, decontamination, PII), so the throughput of the safety steps is measured against
the rest of L1 in the same run; the LLM prompt guard (the same term lists, every language) is timed on the same
pages. A page counts as caught when a safety step rejects it; a safe page counts as
falsely rejected only when a safety step rejects it (the rule filters' own rejections are reported apart).

    python bench/l1_safety.py [--split report|tune|all]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _util import save, table

from tier_assets.curation.l1.settings import load_l1_settings
from tier_assets.curation.l1.tier import candidate_steps
from tier_assets.curation.models.llm import unsafe_category
from tier_assets.curation.pipeline import Doc

DATA = Path(__file__).resolve().parent / "data" / "l1_safety" / "labelled.jsonl"


def load(split: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    return [r for r in rows if split == "all" or r["split"] == split]


def as_doc(row: dict[str, Any], domain: str) -> Doc:
    return {"doc_id": row["id"], "domain": domain, "text": row["text"], "url": row["url"], "signals": {},
            "models": {}, "meta": None, "lang": None}


def run_language(rows: list[dict[str, Any]], lang: str) -> tuple[dict[str, str], dict[str, float]]:
    """doc id -> the rejecting stage:reason ('' when kept), and docs/s per step."""
    steps = candidate_steps(load_l1_settings(lang))
    docs = [as_doc(r, lang) for r in rows if r["lang"] == lang]
    outcome = {d["doc_id"]: "" for d in docs}
    rates: dict[str, float] = {}
    kept = docs
    for step in steps:
        start = time.perf_counter()
        result = step.process(kept)
        rates[step.name] = len(kept) / max(time.perf_counter() - start, 1e-9)
        for doc in result.rejected:
            outcome[doc["doc_id"]] = f"{doc['stage']}:{doc['reason']}"
        kept = result.kept
    return outcome, rates


def figures(rows: list[dict[str, Any]], outcome: dict[str, str]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[bool]] = defaultdict(list)
    for r in rows:
        by_safety = outcome[r["id"]].startswith("safety_")
        groups[(r["lang"], r["label"], r["category"])].append(by_safety)
        if r["label"] == "unsafe":
            groups[(r["lang"], "unsafe", "all")].append(by_safety)
        if r.get("hard_negative"):
            groups[(r["lang"], "safe", "hard_negative")].append(by_safety)
    out = []
    for (lang, label, category), hits in sorted(groups.items()):
        rate = sum(hits) / len(hits)
        out.append({"lang": lang, "label": label, "category": category, "n": len(hits),
                    "measure": "recall" if label == "unsafe" else "false_rejection", "value": round(rate, 3)})
    return out


def prompt_guard(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The LLM prompt guard on the same pages: docs/s and how many it would refuse, per language and label."""
    unsafe_category("warm up")  # loads the lists once
    out: dict[str, Any] = {}
    for lang in ("en", "zh"):
        docs = [r for r in rows if r["lang"] == lang]
        start = time.perf_counter()
        refused = [unsafe_category(r["text"]) is not None for r in docs]
        out[lang] = {"docs_per_s": round(len(docs) / max(time.perf_counter() - start, 1e-9), 1)}
        for label in ("unsafe", "safe"):
            flags = [f for f, r in zip(refused, docs, strict=True) if r["label"] == label]
            out[lang][f"refused_{label}"] = f"{sum(flags)}/{len(flags)}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="report", choices=["report", "tune", "all"])
    args = parser.parse_args()
    rows = load(args.split)
    outcome: dict[str, str] = {}
    throughput: dict[str, dict[str, float]] = {}
    for lang in ("en", "zh"):
        result, rates = run_language(rows, lang)
        outcome.update(result)
        throughput[lang] = {name: round(rate, 1) for name, rate in rates.items()}
    rows_out = figures(rows, outcome)
    print(table(rows_out))
    misses = [{"lang": r["lang"], "label": r["label"], "category": r["category"], "url": (r["url"] or "")[:60],
               "outcome": outcome[r["id"]] or "kept"}
              for r in rows if (r["label"] == "unsafe") != outcome[r["id"]].startswith("safety_")]
    if misses:
        print("\nmisses and false rejections:\n" + table(misses))
    for lang, rates in throughput.items():
        safety = {k: v for k, v in rates.items() if k.startswith("safety_")}
        print(f"\n{lang} docs/s per step: " + ", ".join(f"{k} {v:,.0f}" for k, v in rates.items()))
        rest = [v for k, v in rates.items() if not k.startswith("safety_")]
        print(f"{lang}: safety steps together {1 / sum(1 / v for v in safety.values()):,.0f} docs/s; "
              f"the rest of L1 before dedup {1 / sum(1 / v for v in rest):,.0f} docs/s")
    guard = prompt_guard(rows)
    for lang, g in guard.items():
        print(f"{lang} LLM prompt guard: {g['docs_per_s']:,.0f} docs/s; would refuse {g['refused_unsafe']} unsafe and "
              f"{g['refused_safe']} safe pages")
    save(f"l1_safety_{args.split}", {"split": args.split, "figures": rows_out, "misses": misses,
                                     "throughput_docs_per_s": throughput, "prompt_guard": guard})


if __name__ == "__main__":
    main()
