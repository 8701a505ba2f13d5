"""L1 on real math: keep rate of real math against rejection rate of fragments, before vs after the math rules.

Labelled dev set (``bench/data/math_l1``, README there): 300 PlanetMath entries (good, read from
``../shared/data/math``), the 11 arXiv records of the shared sample (8 fragments, 3 real sections), 60
MathOverflow question + answer pairs (good) and six pages of the extraction benchmark as L0 extracts them.
The shared Stack Exchange sample (Spanish Stack Overflow) is not math: it only enters the language mix.

Both rule sets run behind the same L1 stages (mappers, language id), so a difference is the rules'
alone. *before* is the web rules on the LaTeX-masked view (the math domain until issue 16); *after* is
the math rules with the recipe's thresholds (``recipes/l1.yaml``).

    python bench/math_l1.py [--show-rejected]
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections import Counter, defaultdict

from _util import REPO, SHARED, save, table

from tier_assets.curation.l1.filters import default_filters
from tier_assets.curation.l1.filters.base import FilterGroup
from tier_assets.curation.l1.filters.c4 import C4QualityConfig, C4QualityFilter
from tier_assets.curation.l1.filters.fineweb import FineWebQualityConfig, FineWebQualityFilter
from tier_assets.curation.l1.filters.gopher_quality import GopherQualityConfig, GopherQualityFilter
from tier_assets.curation.l1.filters.gopher_repetition import GopherRepetitionFilter
from tier_assets.curation.l1.filters.length import LengthFilter
from tier_assets.curation.l1.langid import LanguageIdentifier
from tier_assets.curation.l1.mappers import default_mappers
from tier_assets.curation.l1.settings import load_l1_settings
from tier_assets.curation.pipeline import Doc, Filter, Pipeline
from tier_assets.curation.readers.html import extract_main_text

DATA = REPO / "bench/data/math_l1"


def web_rules_masked() -> list[Filter]:
    """The math domain's rules before issue 16: the web rules on the LaTeX-masked view."""
    return [FilterGroup("math_rules", [
        LengthFilter(), GopherQualityFilter(GopherQualityConfig(mask_latex=True)),
        C4QualityFilter(C4QualityConfig(filter_curly_bracket=False, mask_latex=True)),
        FineWebQualityFilter(FineWebQualityConfig(mask_latex=True)), GopherRepetitionFilter()])]


def _doc(doc_id: str, text: str, source: str, label: str) -> Doc:
    return {"doc_id": doc_id, "text": text, "domain": "math", "source": source, "label": label, "url": None,
            "signals": {}, "models": {}, "meta": {}}


def load_dev() -> list[Doc]:
    """The labelled dev set as L1 input documents (``label``: good / bad; ``off_domain`` for the SE sample)."""
    docs = [_doc(r["id"], r["text"], "planetmath", "good")
            for r in map(json.loads, (SHARED / "math/planetmath-number-theory-sample.jsonl").read_text().splitlines())]
    arxiv = (SHARED / "math/arxiv-latex-sample.jsonl").read_text().splitlines()
    for row in map(json.loads, (DATA / "labels.jsonl").read_text().splitlines()):
        if row["source"] == "arxiv":
            text = json.loads(arxiv[int(row["ref"].rsplit("#", 1)[1])])["text"]
        elif row["source"] == "extraction_bench":
            html = gzip.decompress((REPO / row["ref"]).read_bytes()).decode("utf-8")
            text = extract_main_text(html, None)[1]
        else:
            text = row["text"]
        docs.append(_doc(row["id"], text, row["source"], row["label"]))
    for name in ("stackexchange-sample-a.jsonl", "stackexchange-sample-b.jsonl"):
        for i, line in enumerate((SHARED / "math" / name).read_text().splitlines()):
            docs.append(_doc(f"{name}#{i}", json.loads(line)["text"], "stackexchange_sample", "off_domain"))
    return docs


def run(docs: list[Doc], rules: list[Filter]) -> dict[str, tuple[bool, str]]:
    """doc_id -> (kept, reason) through the mappers, language id and ``rules``."""
    settings = load_l1_settings("math")
    stages = [*default_mappers("math"), LanguageIdentifier(settings.langid), *rules]
    result = Pipeline(stages).run([dict(d, signals={}) for d in docs])
    outcome = {d["doc_id"]: (True, "") for d in result.kept}
    outcome.update({d["doc_id"]: (False, d["reason"]) for d in result.rejected})
    return outcome


def rates(docs: list[Doc], outcome: dict[str, tuple[bool, str]]) -> list[dict]:
    groups: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for d in docs:
        groups[(d["source"], d["label"])].append(outcome[d["doc_id"]][0])
        if d["label"] != "off_domain":
            groups[("all", d["label"])].append(outcome[d["doc_id"]][0])
    return [{"source": s, "label": lab, "docs": len(v), "kept": sum(v), "rate": f"{sum(v) / len(v):.3f}",
             "meaning": "keep rate" if lab == "good" else "reject rate" if lab == "bad" else "kept"}
            for (s, lab), v in sorted(groups.items())]


def language_mix(docs: list[Doc]) -> list[dict]:
    """py3langid's label per source, on the text L1 identifies (mappers applied, LaTeX stripped)."""
    settings = load_l1_settings("math")
    result = Pipeline([*default_mappers("math"), LanguageIdentifier(settings.langid)]).run(
        [dict(d, signals={}) for d in docs])
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    for d in result.kept + result.rejected:
        by_source[d["source"]][d.get("lang") or "?"] += 1
    return [{"source": s, "docs": sum(c.values()), "languages": ", ".join(f"{k} {v}" for k, v in c.most_common())}
            for s, c in sorted(by_source.items())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show-rejected", action="store_true", help="list every good document rejected after")
    args = parser.parse_args()
    docs = load_dev()
    recipe = load_l1_settings("math").filters
    before, after = run(docs, web_rules_masked()), run(docs, default_filters("math", recipe))
    rows = []
    for b, a in zip(rates(docs, before), rates(docs, after), strict=True):
        rate_b, rate_a = float(b["rate"]), float(a["rate"])
        if b["label"] == "bad":
            rate_b, rate_a = 1 - rate_b, 1 - rate_a
        rows.append({"source": b["source"], "label": b["label"], "docs": b["docs"], "measure": b["meaning"],
                     "before": f"{rate_b:.3f}", "after": f"{rate_a:.3f}"})
    print(table(rows))
    reasons = {name: Counter(reason for (kept, reason) in outcome.values() if not kept)
               for name, outcome in (("before", before), ("after", after))}
    good_lost = {name: Counter(outcome[d["doc_id"]][1] for d in docs
                               if d["label"] == "good" and not outcome[d["doc_id"]][0])
                 for name, outcome in (("before", before), ("after", after))}
    print("\ngood documents rejected, by reason:", json.dumps(good_lost, indent=1))
    if args.show_rejected:
        for d in docs:
            kept, reason = after[d["doc_id"]]
            if (d["label"] == "good" and not kept) or (d["label"] == "bad" and kept):
                print(f"{d['label']:5s} {'kept' if kept else 'rejected':8s} {reason:40s} {d['doc_id']}: "
                      f"{d['text'][:100]!r}")
    mix = language_mix(docs)
    print("\nlanguage mix (py3langid on the LaTeX-stripped text)")
    print(table(mix))
    save("math_l1", {"rates": rows, "rejections": {k: dict(v) for k, v in reasons.items()},
                     "good_rejected": {k: dict(v) for k, v in good_lost.items()}, "language_mix": mix})


if __name__ == "__main__":
    main()
