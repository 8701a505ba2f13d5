"""L4 subcommands of ``tier-assets``: ``evaluate-l4``.

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


def cmd_evaluate_l4(args: argparse.Namespace) -> int:
    from tier_assets.curation.l4.evaluate import LabelledFileError, evaluate_file

    try:
        report = evaluate_file(args.labelled, split=args.split)
    except LabelledFileError as exc:
        raise UserError(str(exc)) from exc
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)
    return 0


def add_l4_commands(subparsers: argparse._SubParsersAction,
                    parents: list[argparse.ArgumentParser] | None = None) -> None:
    """Register ``evaluate-l4`` on ``subparsers``, with the shared ``parents`` options."""
    parents = parents if parents is not None else [common_options()]
    ev = subparsers.add_parser("evaluate-l4", parents=parents,
                               help="precision / recall of the L4 knowledge checks' keep decision on labelled JSONL")
    ev.add_argument("labelled", type=existing_file,
                    help="JSONL with {text, domain, label: 0|1} per line (1 = a reliable knowledge item)")
    ev.add_argument("--split", default=None, help="only rows whose 'split' field is this (e.g. tune, report)")
    ev.add_argument("--out", default=None, help="also write the JSON report here")
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
