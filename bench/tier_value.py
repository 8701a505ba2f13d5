"""Tier value at demo scale: proxy models trained on L0, L1, L2 and L2 + L3 of the demo's en data.

Runs ``verify_tiers`` (the same code as ``tier-assets verify-tiers`` and the
``tier_value`` asset) on a data root where the demo ran, prints the table and the
conclusions, and writes bench/out/tier_value.json.

    make demo   # or: tier-assets add-batch demo-0001 && tier-assets demo --domain en
    .venv/bin/python bench/tier_value.py [--data-root data] [--token-budget 40000] [--seeds 0 1 2]

``--build-heldout`` (re)writes the shipped held-out evaluation text
``tier_assets/tier_value_data/en-heldout.jsonl.gz`` from ../shared/data: the English
article bodies of the article-extraction benchmark that the L2 reference set does not
use (bench/reference_data.py takes the first 60), so neither the classifier nor any
demo tier has seen them.
"""

from __future__ import annotations

import argparse
import gzip
import json

from _util import REPO, SHARED, save

HELDOUT = REPO / "tier_assets" / "tier_value_data" / "en-heldout.jsonl.gz"
REFERENCE_ARTICLES = 60  # bench/reference_data.py articles(limit=60)


def build_heldout() -> None:
    import py3langid

    gt = json.loads((SHARED / "html/article-extraction-benchmark/ground-truth.json").read_text())
    articles = [(k, v) for k, v in sorted(gt.items()) if len(v.get("articleBody") or "") >= 200]
    lines = [
        json.dumps(
            {"text": v["articleBody"], "source": f"article-extraction-benchmark:{v.get('url', k)}"},
            ensure_ascii=False,
        )
        for k, v in articles[REFERENCE_ARTICLES:]
        if py3langid.classify(v["articleBody"])[0] == "en"
    ]
    with gzip.GzipFile(HELDOUT, "wb", mtime=0) as fh:
        fh.write(("\n".join(lines) + "\n").encode("utf-8"))
    print(f"{len(lines)} held-out articles written to {HELDOUT}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=str(REPO / "data"))
    parser.add_argument("--token-budget", type=int, default=40_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--time-limit", type=float, default=900.0)
    parser.add_argument("--build-heldout", action="store_true")
    args = parser.parse_args()
    if args.build_heldout:
        build_heldout()
        return

    from tier_assets.curation.storage import TierStore
    from tier_assets.curation.tier_value import TierValueConfig, markdown, verify_tiers

    config = TierValueConfig(
        token_budget=args.token_budget, seeds=tuple(args.seeds), time_limit_s=args.time_limit
    )
    results = verify_tiers(TierStore(args.data_root), config)
    print(markdown(results))
    print(f"{results['seconds']:.0f}s on {results['device']}")
    save("tier_value", {k: v for k, v in results.items() if k != "runs"} | {"runs": results["runs"]})


if __name__ == "__main__":
    main()
