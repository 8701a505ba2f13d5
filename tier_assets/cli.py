"""The `tier-assets` command line."""

from __future__ import annotations

import argparse
import json
import sys

from tier_assets.cli_l2 import add_l2_commands
from tier_assets.curation.storage import TierStore


def _cmd_demo(args: argparse.Namespace) -> int:
    from tier_assets.demo import run_demo

    run_demo(args.data_root, args.batch, args.registry, args.domain or None)
    return 0


def _cmd_add_batch(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from tier_assets.demo import ensure_batch

    domains = ensure_batch(TierStore(args.data_root).root, args.batch, args.registry, DagsterInstance.get())
    print(json.dumps({"batch": args.batch, "domains": domains}))
    return 0


def _cmd_catalog(args: argparse.Namespace) -> int:
    from tier_assets.curation.catalog import build_catalog

    print(build_catalog(TierStore(args.data_root)))
    return 0


def _print_rows(rows: list[dict], columns: list[str] | None = None) -> None:
    from tier_assets.curation.stats import markdown_table

    if columns:
        rows = [{c: r.get(c) for c in columns} for r in rows]
    print(markdown_table(rows, max_rows=10_000))


def _cmd_lineage(args: argparse.Namespace) -> int:
    from tier_assets.curation.stats import run_sql

    rows = run_sql(TierStore(args.data_root), "lineage", {"doc_id": args.doc_id})
    if not rows:
        print(f"unknown doc_id {args.doc_id!r}: it is in no tier and no rejected set", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, default=str, indent=1))
        return 0
    for direction, title in (("down", "ancestors (down to the L0 source)"), ("up", "derived records")):
        part = [r for r in rows if r["direction"] == direction]
        print(f"## {title}: {len(part)}")
        if part:
            _print_rows(part, ["depth", "tier", "doc_id", "kept", "stage", "reason", "domain", "batch", "source",
                               "source_file", "record_index", "byte_offset", "url", "warc_record_id"])
    return 0


def _cmd_dup_cluster(args: argparse.Namespace) -> int:
    from tier_assets.curation.stats import run_sql

    rows = run_sql(TierStore(args.data_root), "dup_cluster", [args.doc_id])
    if not rows:
        print(f"doc_id {args.doc_id!r} is in no duplicate cluster of L1", file=sys.stderr)
        return 2
    _print_rows(rows)
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    from tier_assets.curation.stats import STATS_QUERIES, run_sql

    for name in args.query or STATS_QUERIES:
        print(f"## {name}")
        _print_rows(run_sql(TierStore(args.data_root), name))
        print()
    return 0


def _cmd_backfill(args: argparse.Namespace) -> int:
    from tier_assets.runner import backfill

    done = backfill(args.data_root, args.asset, args.domain, args.batch, args.stale)
    print(json.dumps({"asset": args.asset, "partitions": done}))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from tier_assets.curation.report import write_report

    store = TierStore(args.data_root)
    print(write_report(store, args.out or store.root / "report.html"))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from tier_assets.curation.exports import default_spec, export_stage

    store = TierStore(args.data_root)
    spec = default_spec(args.stage, token_budget=args.token_budget, seed=args.seed)
    manifest = export_stage(store, spec, args.out or store.root / "exports" / args.stage)
    print(json.dumps({k: v for k, v in manifest.as_dict().items() if k not in ("cells", "spec")}, indent=1,
                     default=str))
    return 0


def _cmd_ask(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tier_assets.curation.l4.tier import ask
    from tier_assets.curation.models.embedder import get_embedder

    try:
        answers = ask(TierStore(args.data_root), args.question, get_embedder(), args.k)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    close = [a for a in answers if a["score"] >= args.min_score]  # far items would be misleading evidence
    if args.json:
        print(json.dumps(close, ensure_ascii=False, indent=1, default=str))
        return 0
    if not answers:
        print("L4 is empty: nothing to answer from", file=sys.stderr)
        return 1
    if not close:
        print(f"no L4 item is within cosine {args.min_score} of the question (the nearest scores "
              f"{answers[0]['score']:.3f}): L4 does not cover it; --min-score 0 shows the nearest items anyway",
              file=sys.stderr)
        return 1
    for n, a in enumerate(close, 1):
        print(f"{n}. [{a['score']:.3f}] ({a['domain']}/{a['kind']}, topic {a['topic']}, support {a['support']}) "
              f"{a['text']}")
        for ev in a["evidence"]:
            print(f"   evidence {ev['doc_id']}[{ev['start']}:{ev['end']}]: {ev['text']!r}")
            for row in ev["lineage"]:
                where = ", ".join(f"{k}={row[k]}" for k in ("source_file", "record_index", "url") if row[k] is not None)
                print(f"     {'  ' * row['depth']}{row['tier']} {row['doc_id']} {where}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tier-assets", description=__doc__)
    parser.add_argument("--data-root", default=None, help="data root (default: $TIER_ASSETS_DATA_ROOT or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="ingest the bundled demo corpus and materialize every tier through Dagster")
    p.add_argument("--batch", default="demo-0001")
    p.add_argument("--registry", default=None, help="source registry YAML (default: the bundled one)")
    p.add_argument("--domain", action="append", help="only these domains (repeatable)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("add-batch", help="register the registry's sources as a new batch partition")
    p.add_argument("batch")
    p.add_argument("--registry", default=None)
    p.set_defaults(func=_cmd_add_batch)

    p = sub.add_parser("lineage", help="trace a record down to its L0 source and up to everything derived from it")
    p.add_argument("doc_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_lineage)

    p = sub.add_parser("dup-cluster", help="show the L1 duplicate cluster of a document (kept twin + duplicates)")
    p.add_argument("doc_id")
    p.set_defaults(func=_cmd_dup_cluster)

    p = sub.add_parser("stats", help="print the tier stats (the SQL in sql/ over the catalog views)")
    p.add_argument("query", nargs="*", help="tier_summary, funnel, rejection_reasons, score_distribution, ...")
    p.set_defaults(func=_cmd_stats)

    p = sub.add_parser("backfill", help="materialize an asset for many partitions through Dagster")
    p.add_argument("asset", help="e.g. l1_filtered")
    p.add_argument("--domain", action="append", help="only these domains (repeatable)")
    p.add_argument("--batch", action="append", help="only these batches (repeatable)")
    p.add_argument("--stale", action="store_true", help="only partitions made by an older recipe/classifier")
    p.set_defaults(func=_cmd_backfill)

    p = sub.add_parser("report", help="write one HTML report: funnel, score histograms, rejections, dedup clusters")
    p.add_argument("--out", default=None, help="HTML file (default: {data_root}/report.html)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("export", help="write a training-stage mixture (shards + manifest)")
    p.add_argument("stage", choices=["pretrain", "decay", "sft", "rag"])
    p.add_argument("--token-budget", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default: {data_root}/exports/STAGE)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("ask", help="search L4 knowledge; answers come with evidence text and lineage down to L0")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=5, help="how many items (default 5)")
    p.add_argument("--min-score", type=float, default=0.3,
                   help="leave out items whose cosine similarity to the question is below this (default 0.3)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_ask)

    add_l2_commands(sub)

    p = sub.add_parser("catalog", help="(re)build catalog.duckdb with one view per tier and rejected set")
    p.set_defaults(func=_cmd_catalog)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
