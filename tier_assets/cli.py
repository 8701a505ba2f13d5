"""The `tier-assets` command line.

Exit codes: 0 done; 1 a Dagster run failed (demo, backfill: each failure named with
its partition and the first line of its error) or `ask` found nothing close enough;
2 a usage error or missing data (bad value, unknown name, empty data root), or object
storage that refuses the credentials or cannot be reached (an s3:// data root), said in
one line; 141 (128 + SIGPIPE) stdout closed by its reader (`tier-assets stats | head`), quietly.
Anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tier_assets.curation.objectstore import ObjectStoreError
from tier_assets.curation.schema import DOMAINS
from tier_assets.curation.storage import TierStore

if TYPE_CHECKING:
    from tier_assets.runner import RunOutcome


class UserError(Exception):
    """An expected mistake (a bad value, an unknown name, missing data): `main` prints it as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2) instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def port(text: str) -> int:
    """argparse type: a TCP port (0 lets the system pick one)."""
    if not text.strip().isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port 0-65535, got {text!r}")
    return int(text)


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    return value


def _question(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the question is empty")
    return text


def _batch_key(text: str) -> str:
    from tier_assets.curation.sources import check_batch_key

    try:
        return check_batch_key(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def existing_file(text: str) -> str:
    """argparse type: a path to a file that exists."""
    from pathlib import Path

    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return text


def common_options() -> argparse.ArgumentParser:
    """Options of every command, defined once; valid before or after the subcommand.

    The default is SUPPRESS, so a subcommand that was not given ``--data-root``
    leaves the value given before it alone (``main`` starts the namespace at None).
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-root", default=argparse.SUPPRESS,
                        help="data root: a path or s3://bucket/prefix (default: $TIER_ASSETS_DATA_ROOT or ./data)")
    return common


def _run_options() -> argparse.ArgumentParser:
    runs = argparse.ArgumentParser(add_help=False)
    runs.add_argument("--verbose", action="store_true",
                      help="show Dagster's full event logs on the terminal instead of writing them to "
                           "{data_root}/logs/COMMAND-TIME.log")
    return runs


def _require_tiers(store: TierStore) -> None:
    """Stats, report and exports of an empty data root would be empty files that look like results."""
    if store.remote:
        store.remote.check()  # a missing bucket would look empty; refused credentials fail here, in one line
    if not store.tiers_present():
        raise UserError(f"no tier data under {store.uri} yet: run `tier-assets demo`, or `tier-assets add-batch NAME`"
                        " then `tier-assets backfill l0_raw` (and the tiers above); or give --data-root")


def _check_llm_env() -> None:
    """Commands that build the Dagster definitions read ``$TIER_ASSETS_LLM`` there; a bad value is the user's.

    Checked before the definitions are imported, so the mistake is one line instead of a traceback
    from module import (``tier_assets.definitions`` builds them at import time).
    """
    from tier_assets.curation.models.llm import LLMConfig

    text = os.environ.get("TIER_ASSETS_LLM", "")
    try:
        LLMConfig.from_json(text)
    except ValueError as exc:
        raise UserError(f"TIER_ASSETS_LLM: {exc}; fix it or unset it for the embedded default LLM") from exc


def _output_dir(path: str | Path, option: str) -> Path:
    """Create the folder ``path`` (given as ``option``) for writing, or say in one line why it cannot be one.

    Checked before any output is written, so an unwritable place (a parent that is a file, a
    read-only file system, no permission) fails as a user error with nothing half-written.
    """
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{option} {path}: cannot create the folder ({exc.strerror or exc}); "
                        "give a writable place") from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: the folder is not writable (permission denied or a read-only "
                        "file system); give a writable place")
    return out


def _exit_code(outcomes: list[RunOutcome]) -> int:
    """1 when any run failed (each was named on stderr with its partition and error), else 0."""
    return 1 if any(not o.ok for o in outcomes) else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    _check_llm_env()
    from tier_assets.demo import run_demo

    return _exit_code(run_demo(args.data_root, args.batch, args.registry, args.domain, args.verbose, args.through))


def _cmd_add_batch(args: argparse.Namespace) -> int:
    _check_llm_env()
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

    store = TierStore(args.data_root)
    _require_tiers(store)  # on an empty root "unknown doc_id" would blame the id
    rows = run_sql(store, "lineage", {"doc_id": args.doc_id})
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

    store = TierStore(args.data_root)
    _require_tiers(store)
    rows = run_sql(store, "dup_cluster", [args.doc_id])
    if not rows:
        print(f"doc_id {args.doc_id!r} is in no duplicate cluster of L1", file=sys.stderr)
        return 2
    _print_rows(rows)
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    from tier_assets.curation.stats import STATS_QUERIES, run_sql

    unknown = [q for q in args.query if q not in STATS_QUERIES]
    if unknown:
        raise UserError(f"unknown query {unknown[0]!r}; known: {', '.join(STATS_QUERIES)}")
    store = TierStore(args.data_root)
    _require_tiers(store)
    for name in args.query or STATS_QUERIES:
        print(f"## {name}")
        _print_rows(run_sql(store, name))
        print()
    return 0


def _cmd_backfill(args: argparse.Namespace) -> int:
    _check_llm_env()
    from tier_assets.runner import backfill

    return _exit_code(backfill(args.data_root, args.asset, args.domain, args.batch, args.stale, args.verbose))


def _cmd_report(args: argparse.Namespace) -> int:
    from tier_assets.curation.report import write_report

    store = TierStore(args.data_root)
    _require_tiers(store)
    out = Path(args.out) if args.out else store.root / "report.html"
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; give the HTML file's path")
    _output_dir(out.parent, "--out")
    print(write_report(store, out))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from tier_assets.curation.exports import default_spec, export_stage

    store = TierStore(args.data_root)
    _require_tiers(store)
    spec = dataclasses.replace(default_spec(args.stage, token_budget=args.token_budget, seed=args.seed),
                               output_format=args.format)
    out = _output_dir(args.out or store.root / "exports" / args.stage, "--out")
    manifest = export_stage(store, spec, out)
    print(json.dumps({k: v for k, v in manifest.as_dict().items() if k not in ("cells", "spec")}, indent=1,
                     default=str))
    return 0


def _cmd_ask(args: argparse.Namespace) -> int:
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
        print(f"no L4 item is within {args.min_score} of the question (the nearest scores "
              f"{answers[0]['score']:.3f}): L4 does not cover it; --min-score 0 shows the nearest items anyway",
              file=sys.stderr)
        return 1
    for n, a in enumerate(close, 1):
        print(f"{n}. [{a['score']:.3f} {a['match']}] ({a['domain']}/{a['kind']}, subject {a['subject']!r}, "
              f"topic {a['topic']}, support {a['support']}) {a['text']}")
        if a["conflicts_with"]:
            print(f"   conflicts with: {', '.join(map(str, a['conflicts_with']))}")
        for ev in a["evidence"]:
            print(f"   evidence {ev['doc_id']}[{ev['start']}:{ev['end']}]: {ev['text']!r}")
            for row in ev["lineage"]:
                where = ", ".join(f"{k}={row[k]}" for k in ("source_file", "record_index", "url") if row[k] is not None)
                print(f"     {'  ' * row['depth']}{row['tier']} {row['doc_id']} {where}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from tier_assets.cli_l2 import add_l2_commands
    from tier_assets.cli_l4 import add_l4_commands
    from tier_assets.cli_models import add_model_commands
    from tier_assets.cli_tier_value import add_tier_value_commands
    from tier_assets.curation.exports.spec import OUTPUT_FORMATS

    common, runs = common_options(), _run_options()
    parser = _Parser(prog="tier-assets", description=__doc__, parents=[common],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, *extra: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[common, *extra])

    p = command("demo", "ingest the bundled demo corpus and materialize every tier through Dagster", runs)
    p.add_argument("--batch", default="demo-0001", type=_batch_key)
    p.add_argument("--registry", default=None, help="source registry YAML (default: the bundled one)")
    p.add_argument("--domain", action="append", choices=DOMAINS, help="only these domains (repeatable)")
    p.add_argument("--through", default="L4", choices=("L1", "L2", "L4"),
                   help="stop after this tier (L2: without L3/L4 and the final index and stats runs)")
    p.set_defaults(func=_cmd_demo)

    p = command("add-batch", "register the registry's sources as a new batch partition")
    p.add_argument("batch", type=_batch_key)
    p.add_argument("--registry", default=None)
    p.set_defaults(func=_cmd_add_batch)

    p = command("lineage", "trace a record down to its L0 source and up to everything derived from it")
    p.add_argument("doc_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_lineage)

    p = command("dup-cluster", "show the L1 duplicate cluster of a document (kept twin + duplicates)")
    p.add_argument("doc_id")
    p.set_defaults(func=_cmd_dup_cluster)

    p = command("stats", "print the tier stats (the SQL in sql/ over the catalog views)")
    # no type=: a positional type error would win over argparse's "unrecognized arguments: --typo",
    # blaming the typo's value (`stats --domian en` -> "unknown query 'en'"); _cmd_stats checks the names
    p.add_argument("query", nargs="*",
                   help="tier_summary, funnel, rejection_reasons, score_distribution, dup_cluster_sizes")
    p.set_defaults(func=_cmd_stats)

    p = command("backfill", "materialize an asset for many partitions through Dagster", runs)
    p.add_argument("asset", help="e.g. l1_filtered")
    p.add_argument("--domain", action="append", choices=DOMAINS, help="only these domains (repeatable)")
    p.add_argument("--batch", action="append", type=_batch_key, help="only these batches (repeatable)")
    p.add_argument("--stale", action="store_true", help="only partitions made by an older recipe/classifier")
    p.set_defaults(func=_cmd_backfill)

    p = command("report", "write one HTML report: funnel, score histograms, rejections, dedup clusters")
    p.add_argument("--out", default=None, help="HTML file (default: {data_root}/report.html)")
    p.set_defaults(func=_cmd_report)

    p = command("export", "write a training-stage mixture (shards + manifest)")
    p.add_argument("stage", choices=["pretrain", "decay", "sft", "rag"])
    p.add_argument("--token-budget", type=non_negative_int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default: {data_root}/exports/STAGE)")
    p.add_argument("--format", default="jsonl.zst", choices=OUTPUT_FORMATS,
                   help="shard format: zstd-compressed JSON lines or Parquet (default: jsonl.zst)")
    p.set_defaults(func=_cmd_export)

    p = command("ask", "search L4 knowledge; answers come with evidence text and lineage down to L0")
    p.add_argument("question", type=_question)
    p.add_argument("-k", type=positive_int, default=5, help="how many items (default 5)")
    # MiniLM puts unrelated questions and statements at cosine 0.15-0.35 and some near misses just below
    # 0.5 ("hash table" -> collections.Counter 0.47); a question an item answers scores 0.65 and up
    p.add_argument("--min-score", type=_finite_float, default=0.5,
                   help="leave out items whose score (cosine similarity; for a Chinese question the share of "
                        "its content bigrams the item holds) is below this (default 0.5)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_ask)

    add_model_commands(sub, [common])
    add_l2_commands(sub, [common])
    add_tier_value_commands(sub, [common])
    add_l4_commands(sub, [common])

    p = command("catalog", "(re)build catalog.duckdb with one view per tier and rejected set")
    p.set_defaults(func=_cmd_catalog)
    return parser


def _one_line(text: str) -> str:
    return " ".join(text.split())


def instance_unreachable(exc: BaseException) -> str | None:
    """The one-line reason when ``exc`` comes from a Dagster instance whose Postgres cannot be reached.

    dagster-postgres surfaces it as a SQLAlchemy / psycopg ``OperationalError`` wrapped in
    Dagster's own errors; the driver's first line names host and port.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        module = type(current).__module__.split(".")[0]
        if type(current).__name__ == "OperationalError" and module in ("psycopg2", "psycopg", "sqlalchemy"):
            first = next((line.strip() for line in str(current).splitlines() if line.strip()), str(current))
            first = first.removeprefix("(psycopg2.OperationalError) ")
            return (f"the Dagster instance's Postgres is unreachable: {first} "
                    "(check DAGSTER_PG_HOST / DAGSTER_PG_PORT and that the server is running)")
        current = current.__cause__ or current.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv, argparse.Namespace(data_root=None))
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit where it cannot be handled
        return code
    except BrokenPipeError:
        # the reader went away (`tier-assets stats | head`): the Python docs' recipe (signal module, "Note on
        # SIGPIPE"): point stdout at devnull so the exit-time flush cannot fail again, and end quietly with
        # 128 + SIGPIPE, the status a shell reports for a command stopped by a closed pipe
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (UserError, ObjectStoreError) as exc:  # expected; anything else is a bug and keeps its traceback
        print(f"tier-assets {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:
        reason = instance_unreachable(exc)
        if reason is None:
            raise
        print(f"tier-assets {args.command}: error: {_one_line(reason)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
