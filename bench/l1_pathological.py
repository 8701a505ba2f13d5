"""L1 on pathological documents, in seconds: the timings the tests no longer assert (they flaked on a loaded
machine; tier_assets_tests/test_l1_filters.py now guards these inputs with timeout markers and counts the
work in operations).

- a 10 MB document: the rule filters reject it by length before any other filter measures it; the mappers
  still run over all of it;
- one line repeated 10,000 times through the English mappers and filters;
- real text (RedPajama CC) 2x, 4x, 8x through the same chain: seconds per doubling (linear: x2);
- ``mask_latex`` (the math view) on unclosed LaTeX delimiters, 1x, 2x, 4x: a regex that searches to the end
  of the text from every opener grows quadratically (x4 per doubling).

    python bench/l1_pathological.py [--latex-units 500]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from _util import SHARED, save, table, timed

from tier_assets.curation.l1.filters import default_filters, mask_latex
from tier_assets.curation.l1.mappers import default_mappers
from tier_assets.curation.pipeline import Pipeline

LINE = "The quick brown fox jumps over the lazy dog near the river bank.\n"
UNCLOSED_LATEX = {"\\[": "\\[ a ", "\\(": "\\( c ", "\\begin{equation}": "\\begin{equation} d "}


def real_text() -> str:
    path = SHARED / "web/redpajama-cc-2023-06-sample.jsonl"
    return "\n\n".join(json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()) + "\n\n"


def run_chain(text: str) -> str:
    """The English mappers then rule filters on one document; returns how it ended."""
    result = Pipeline(default_mappers("en") + default_filters("en")).run([{"text": text}])
    return result.rejected[0]["reason"] if result.rejected else "kept"


def enormous_document(base: str) -> list[dict[str, Any]]:
    text = base * (10_500_000 // len(base) + 1)
    outcome, filter_s = timed(lambda: Pipeline(default_filters("en")).run([{"text": text}]))
    _, mapper_s = timed(lambda: Pipeline(default_mappers("en")).run([{"text": text}]))
    return [{"case": f"{len(text) / 1e6:.1f} MB document: rule filters", "outcome": outcome.rejected[0]["reason"],
             "seconds": f"{filter_s:.3f}"},
            {"case": f"{len(text) / 1e6:.1f} MB document: mappers", "outcome": "mapped", "seconds": f"{mapper_s:.3f}"}]


def doubling(label: str, unit: str, sizes: tuple[int, ...], fn: Any) -> list[dict[str, Any]]:
    rows, previous = [], None
    for size in sizes:
        outcome, seconds = timed(lambda size=size: fn(unit * size))
        growth = f"x{seconds / previous:.1f}" if previous else ""
        rows.append({"case": f"{label} x{size}", "outcome": outcome, "seconds": f"{seconds:.3f}", "growth": growth})
        previous = seconds
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latex-units", type=int, default=500, help="unclosed openers at 1x (then 2x, 4x)")
    args = parser.parse_args(argv)
    base = real_text()
    run_chain(base * 8)  # warm the per-token caches so the first measured run is not charged for them
    rows = enormous_document(base)
    rows += doubling("one line repeated", LINE, (2_500, 5_000, 10_000), run_chain)
    rows += doubling("real CC text", base, (2, 4, 8), run_chain)
    n = args.latex_units
    for opener, unit in UNCLOSED_LATEX.items():
        rows += doubling(f"mask_latex, unclosed {opener}", unit, (n, 2 * n, 4 * n), lambda t: f"{len(mask_latex(t))} chars")
    for row in rows:
        row.setdefault("growth", "")
    print(table(rows))
    save("l1_pathological", {"rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
