"""Math L3: verified yield per UltraData-Math format with the embedded model.

UltraData-Math's L3 formats, as tier_assets implements them: ``qa`` (a problem and a worked solution at
four levels), ``dialogue`` (teacher-student, two experts), ``rewrite`` (textbook, lecture notes, Wikipedia,
popular science) and ``knowledge`` (a knowledge point, an exercise and its solution). Each of ``--docs``
real math documents (PlanetMath entries and MathOverflow pairs of the demo corpus, alternating) is refined
into every format by the configured LLM (default: the embedded SmolLM2-135M), and every output goes through
L3's verification. Printed per format: outputs, verified, pass rate, rejection reasons.

    python bench/math_l3.py [--docs 6] [--max-new-tokens 256]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from _util import REPO, save, table

from tier_assets.curation.l3.refine import refine_partition
from tier_assets.curation.l3.settings import L3Settings
from tier_assets.curation.models.embedder import get_embedder
from tier_assets.curation.models.llm import load_llm

DEMO = REPO / "tier_assets/demo_data/math"
FORMATS = ("qa", "dialogue", "rewrite", "knowledge")


def math_docs(n: int) -> list[dict]:
    """``n`` L2-shaped math documents: PlanetMath entries and MathOverflow pairs, alternating."""
    sources = [[json.loads(line) for line in (DEMO / name).read_text().splitlines()]
               for name in ("planetmath-number-theory-demo.jsonl", "mathoverflow-demo.jsonl")]
    rows = [row for pair in zip(*sources, strict=False) for row in pair][:n]
    return [{"doc_id": r["id"], "parent_ids": [], "tier": "L2", "domain": "math", "batch": "bench", "text": r["text"],
             "title": (r.get("metadata") or {}).get("title"), "score": 5.0 - k / 100, "signals": {}, "models": {},
             "meta": {}} for k, r in enumerate(rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=6)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    args = parser.parse_args()
    docs = math_docs(args.docs)
    config = L3Settings(budget_tokens=10**7, formats={"math": FORMATS}, max_new_tokens=args.max_new_tokens,
                        max_source_chars=1200)
    llm = load_llm()
    kept, rejected, stats = refine_partition(docs, llm, get_embedder(), config, progress=print)
    per_format = {fmt: Counter(stats.per_format.get(fmt, {})) for fmt in FORMATS}
    rows = [{"format": fmt, "outputs": c["attempted"], "verified": c["kept"],
             "pass_rate": f"{c['kept'] / c['attempted']:.2f}" if c["attempted"] else "-",
             "rejections": ", ".join(f"{r} {n}" for r, n in c.most_common() if r not in ("attempted", "kept"))}
            for fmt, c in per_format.items()]
    print(table(rows))
    examples = {r["signals"]["l3"]["format"]: r["text"][:600] for r in kept}
    for fmt, text in examples.items():
        print(f"\nverified {fmt}:\n{text}")
    save("math_l3", {"model": llm.info, "docs": [d["doc_id"] for d in docs], "formats": rows,
                     "seconds": stats.seconds, "tokens_out": stats.tokens_out, "verified_examples": examples})


if __name__ == "__main__":
    main()
