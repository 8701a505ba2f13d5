"""L4 subcommands of ``tier-assets``: ``evaluate-l4`` (rules + the knowledge scorer where the L4 recipe turns
it on, as the stage decides; ``--no-scorer``: the rules alone; ``--judge``: with the LLM knowledge judge).

``add_l4_commands(subparsers, parents)`` registers them on the main CLI's argparse
subparsers (``parents``: the options every command shares); each sets ``func`` to a
handler taking the parsed namespace and returning an exit code. ``main`` runs them
alone (tests, or before the main CLI wires them).
"""

from __future__ import annotations

import argparse
import json
import sys

from tier_assets.cli import UserError, common_options, existing_file


def _judge_margins(path: str, split: str | None, cache_file: str | None) -> list[float | None]:
    """The knowledge judge's margins for the rows ``evaluate_file`` reads ($TIER_ASSETS_LLM, else the embedded
    model), through an LLM cache file so a re-run asks nothing."""
    import os

    from tier_assets.curation.l4.evaluate import read_split
    from tier_assets.curation.l4.judge import knowledge_margins
    from tier_assets.curation.llm_cache import LLMCache
    from tier_assets.curation.models.llm import LLMConfig, load_llm

    rows = read_split(path, split)
    llm = load_llm(LLMConfig.from_json(os.environ.get("TIER_ASSETS_LLM", "")))
    cache = LLMCache(cache_file) if cache_file else None
    return knowledge_margins(llm, [r["text"] for r in rows], cache)


def _embedder():
    """The embedder the L4 stage's knowledge scorer reads (the process-wide default model)."""
    from tier_assets.curation.models.embedder import get_embedder

    return get_embedder()


def _summary(name: str, scores: dict) -> str:
    return (f"{name}: precision {scores['precision']}, recall {scores['recall']} "
            f"({scores['kept']} kept of {scores['n']}, {scores['true_items']} true)")


def cmd_evaluate_l4(args: argparse.Namespace) -> int:
    from tier_assets.curation.l4.evaluate import LabelledFileError, evaluate_file

    try:
        margins = _judge_margins(args.labelled, args.split, args.judge_cache) if args.judge else None
        report = evaluate_file(args.labelled, split=args.split, margins=margins,
                               embedder=None if args.no_scorer else _embedder())
    except LabelledFileError as exc:
        raise UserError(str(exc)) from exc
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)
    names = (["without_checks", "with_checks"] + ([] if args.no_scorer else ["with_scorer"])
             + (["judge_only", "with_judge"] if args.judge else []))
    for name in names:
        print(_summary(name, report[name]["overall"]), file=sys.stderr)
    if not args.no_scorer:
        print(f"with_scorer: the rules, then the knowledge scorer in {report['scorer_domains'] or 'no domain'} "
              "(the L4 stage's default)", file=sys.stderr)
    return 0


def add_l4_commands(subparsers: argparse._SubParsersAction,
                    parents: list[argparse.ArgumentParser] | None = None) -> None:
    """Register ``evaluate-l4`` on ``subparsers``, with the shared ``parents`` options."""
    parents = parents if parents is not None else [common_options()]
    ev = subparsers.add_parser("evaluate-l4", parents=parents,
                               help="precision / recall of the L4 knowledge checks' keep decision on labelled JSONL "
                                    "(rules, and rules + scorer as the L4 stage decides by default)")
    ev.add_argument("labelled", type=existing_file,
                    help="JSONL with {text, domain, label: 0|1} per line (1 = a reliable knowledge item)")
    ev.add_argument("--split", default=None, help="only rows whose 'split' field is this (e.g. tune, report)")
    ev.add_argument("--out", default=None, help="also write the JSON report here")
    ev.add_argument("--no-scorer", action="store_true",
                    help="the rules alone: leave out the knowledge scorer the L4 recipe turns on (en)")
    ev.add_argument("--judge", action="store_true",
                    help="also run the LLM knowledge judge: the judge alone and rules + judge, next to the rules")
    ev.add_argument("--judge-cache", default=None,
                    help="JSONL LLM cache for the judge's answers (bench/data/l4/knowledge_judge_cache.jsonl "
                         "holds the dev set's)")
    ev.set_defaults(func=cmd_evaluate_l4)


def main(argv: list[str] | None = None) -> int:
    """Run an L4 subcommand on its own: ``main(["evaluate-l4", "dev.jsonl"])``."""
    parser = argparse.ArgumentParser(prog="tier-assets")
    add_l4_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv, argparse.Namespace(data_root=None))
    try:
        return args.func(args)
    except UserError as exc:
        print(f"tier-assets {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
