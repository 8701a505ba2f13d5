"""Math L4 rule extraction on PlanetMath: do definition items name what the entry defines?

For every PlanetMath entry of the shared sample (``../shared/data/math``), L4's rule extractor
(``l4/extract.py: rule_items``) runs on the entry as a math document. Per entry type:

* coverage: entries with at least one item of the expected kind (definition for Definition entries,
  theorem or definition for Theorem entries);
* subject matches title (Definition entries): the first definition item's subject equals the entry's
  title after normalization (case, articles, plural, LaTeX markup), or, leniently, one contains the other;
* items by method (LaTeX environment, "is called / we call / is defined as" sentence, ...).

The entry's title is withheld from the extractor (L4 names an unnamed theorem environment after its
document's title), so the match rate measures what the text itself says.

    python bench/math_l4.py [--show N]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter

from _util import SHARED, save, table

from tier_assets.curation.l4.extract import rule_items
from tier_assets.curation.l4.settings import load_l4_settings

_MARKUP = re.compile(r"\\(?:emph|textbf|textit|em|it|bf|mathrm|text|PMlinkname|PMlinkescapetext)\b|[{}$\\]")


def normalize(term: str | None) -> str:
    """A term as a reader compares it: markup, articles, a plural s and punctuation gone."""
    words = re.sub(r"[^a-z0-9' ]+", " ", _MARKUP.sub(" ", (term or "").lower())).split()
    words = [w for w in words if w not in ("a", "an", "the")]
    if words and len(words[-1]) > 3 and words[-1].endswith("s") and not words[-1].endswith("ss"):
        words[-1] = words[-1][:-1]
    return " ".join(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show", type=int, default=0, help="print N Definition entries whose subject misses")
    args = parser.parse_args()
    config = load_l4_settings("math")
    entries = [json.loads(line) for line in (SHARED / "math/planetmath-number-theory-sample.jsonl").read_text()
               .splitlines()]
    by_type: Counter[str] = Counter()
    covered: Counter[str] = Counter()
    methods: Counter[str] = Counter()
    strict = lenient = 0
    misses = []
    for entry in entries:
        kind = entry["metadata"]["type"]
        doc = {"doc_id": entry["id"], "text": entry["text"], "domain": "math", "batch": "b", "tier": "L2",
               "signals": {}, "meta": {}}
        items = rule_items(doc, config)
        methods.update(f"{i.kind} via {i.method}" for i in items)
        by_type[kind] += 1
        wanted = ("definition",) if kind == "Definition" else ("theorem", "definition")
        found = [i for i in items if i.kind in wanted]
        covered[kind] += bool(found)
        if kind != "Definition":
            continue
        title = normalize(entry["metadata"]["title"])
        subject = normalize(found[0].subject) if found else ""
        strict += bool(subject) and subject == title
        ok = bool(subject) and (subject == title or subject in title or title in subject)
        lenient += ok
        if not ok:
            misses.append((entry["metadata"]["title"], found[0].subject if found else None,
                           found[0].text[:120] if found else entry["text"][:120]))
    n_def = by_type["Definition"]
    rows = [{"type": t, "entries": n, "with_item": covered[t], "coverage": f"{covered[t] / n:.3f}"}
            for t, n in by_type.most_common() if t in ("Definition", "Theorem", "Proof", "Example", "Result")]
    print(table(rows))
    match = {"definition_entries": n_def, "subject_equals_title": strict, "subject_equals_title_rate": round(strict / n_def, 3),
             "subject_matches_title_lenient": lenient, "lenient_rate": round(lenient / n_def, 3)}
    print("\n" + json.dumps(match, indent=1))
    print("\nitems by kind and method:", dict(methods.most_common()))
    for title, subject, text in misses[:args.show]:
        print(f"- {title!r}: subject {subject!r} <- {text!r}")
    save("math_l4", {"coverage": rows, "subject_match": match, "methods": dict(methods)})


if __name__ == "__main__":
    main()
