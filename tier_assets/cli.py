"""The `tier-assets` command line."""

from __future__ import annotations

import argparse
import json
import sys

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

    p = sub.add_parser("catalog", help="(re)build catalog.duckdb with one view per tier and rejected set")
    p.set_defaults(func=_cmd_catalog)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
