"""L2 subcommands of ``tier-assets``: ``evaluate-l2`` (``serve-llm`` is in ``cli_models``).

``add_l2_commands(subparsers, parents)`` registers it on the main CLI's argparse
subparsers (``parents``: the options every command shares, such as ``--data-root``);
each sets ``func`` to a handler taking the parsed namespace and returning an exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tier_assets.cli import UserError, common_options, existing_file, positive_int
from tier_assets.curation.schema import DOMAINS


def cmd_evaluate_l2(args: argparse.Namespace) -> int:
    from tier_assets.curation.l2.evaluate import LabelledFileError, evaluate_labelled
    from tier_assets.curation.l2.train import classifier_dir, current_version
    from tier_assets.curation.storage import TierStore

    if args.classifier is not None and not Path(args.classifier).is_dir():
        raise UserError(f"--classifier {args.classifier}: no such directory")
    if args.classifier is None:  # the domain's current classifier, as l2_selected uses it
        root = TierStore(args.data_root).root
        version = current_version(root, args.domain)
        if version is None and not args.llm_judge:
            print(f"evaluate-l2: no {args.domain} classifier under {root} yet (materialize l2_classifier); "
                  "give --classifier DIR and/or --llm-judge", file=sys.stderr)
            return 2
        if version is not None:
            args.classifier = str(classifier_dir(root, args.domain) / version)
    llm_config = _llm_config(args.llm_config)
    try:
        report = evaluate_labelled(args.labelled, classifier_dir=args.classifier, llm_judge=args.llm_judge,
                                   llm_config=llm_config, domain=args.domain, limit=args.limit)
    except LabelledFileError as exc:
        raise UserError(str(exc)) from exc
    text = json.dumps(report, indent=2)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)
    return 0


def _llm_config(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--llm-config is not JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise UserError(f"--llm-config must be a JSON object, got {text!r}")
    return config


def add_l2_commands(subparsers: argparse._SubParsersAction,
                    parents: list[argparse.ArgumentParser] | None = None) -> None:
    """Register ``evaluate-l2`` on ``subparsers``, with the shared ``parents`` options."""
    parents = parents if parents is not None else [common_options()]
    ev = subparsers.add_parser("evaluate-l2", help="AUC / accuracy of the L2 scorer and LLM judge on labelled JSONL",
                               parents=parents)
    ev.add_argument("labelled", type=existing_file, help="JSONL with {text, label: 0|1} per line")
    ev.add_argument("--classifier", default=None,
                    help="directory of a distilled classifier (card.json + weights); default: the domain's "
                         "current classifier under the data root")
    ev.add_argument("--llm-judge", action="store_true", help="also score with the raw LLM 0-5 judge (slow)")
    ev.add_argument("--llm-config", default=None,
                    help='LLM config as JSON, e.g. \'{"backend": "openai", "base_url": ..., "model": ...}\'')
    ev.add_argument("--domain", default="en", choices=DOMAINS)
    ev.add_argument("--limit", type=positive_int, default=None, help="evaluate only the first N rows")
    ev.add_argument("--out", default=None, help="also write the JSON report here")
    ev.set_defaults(func=cmd_evaluate_l2)
