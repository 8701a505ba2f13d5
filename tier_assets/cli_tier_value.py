"""``tier-assets verify-tiers``: proxy-model verification that higher tiers train better models.

``add_tier_value_commands(subparsers)`` registers it on the main CLI's argparse
subparsers; the handler returns an exit code. Bad settings exit 2 with one line on
stderr; a refused run (short arm, leaking evaluation set, budget over the time
limit) exits 1 with the reason.
"""

from __future__ import annotations

import argparse
import sys

from tier_assets.cli import common_options, non_negative_int, positive_int
from tier_assets.curation.schema import DOMAINS


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def cmd_verify_tiers(args: argparse.Namespace) -> int:
    from tier_assets.curation.storage import TierStore
    from tier_assets.curation.tier_value import (
        BudgetTooLarge,
        EvalSetLeak,
        ProxyConfig,
        ShortArm,
        TierValueConfig,
        markdown,
        parse_spec,
        results_dir,
        verify_tiers,
    )

    try:
        proxy = ProxyConfig.for_mode(
            args.mode,
            base_model=args.base_model,
            device=args.device,
            seq_len=args.seq_len,
            batch_size=args.batch_size,
            epochs=args.epochs,
        )
        config = TierValueConfig(
            domain=args.domain,
            token_budget=args.token_budget,
            seeds=tuple(args.seeds),
            arms=tuple(args.arms),
            extra_specs=tuple(parse_spec(s) for s in args.spec),
            eval_path=args.eval,
            mmlu_items=args.mmlu_items,
            short_arm="refuse" if args.refuse_short else "report",
            time_limit_s=args.time_limit,
            proxy=proxy,
        )
    except ValueError as exc:
        print(f"verify-tiers: {exc}", file=sys.stderr)
        return 2
    store = TierStore(args.data_root)
    try:
        results = verify_tiers(
            store, config, log=lambda line: print(f"[verify-tiers] {line}", file=sys.stderr)
        )
    except (ShortArm, EvalSetLeak, BudgetTooLarge, FileNotFoundError) as exc:
        print(f"verify-tiers: refused: {exc}", file=sys.stderr)
        return 1
    print(markdown(results))
    print(f"\nresults: {results_dir(store) / 'results.json'}")
    return 0


def add_tier_value_commands(subparsers: argparse._SubParsersAction,
                            parents: list[argparse.ArgumentParser] | None = None) -> None:
    """Register ``verify-tiers`` on ``subparsers``, with the shared ``parents`` options (``--data-root``)."""
    from tier_assets.curation.tier_value import BUILTIN_ARMS

    p = subparsers.add_parser(
        "verify-tiers",
        help="train proxy LMs on each tier at an equal token budget and "
        "compare held-out perplexity and MMLU accuracy",
        parents=parents if parents is not None else [common_options()],
    )
    p.add_argument("--domain", default="en", choices=DOMAINS)
    p.add_argument(
        "--token-budget",
        type=positive_int,
        default=40_000,
        help="tokens per arm (the project's estimated tokens, as exports count them)",
    )
    p.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", choices=BUILTIN_ARMS, default=list(BUILTIN_ARMS))
    p.add_argument(
        "--spec",
        action="append",
        default=[],
        help="a further arm: a stage name (pretrain, decay) or a JSON file of export-spec fields",
    )
    p.add_argument(
        "--eval", default=None, help="held-out JSONL(.gz) with a text field (default: the shipped set)"
    )
    p.add_argument("--mmlu-items", type=int, default=200)
    p.add_argument(
        "--mode",
        choices=("tiny", "decay"),
        default="tiny",
        help="tiny: a small Llama from scratch (CPU); decay: continue SmolLM2-135M on 30%% arm / "
        "70%% general tokens (the paper's decay verification; meant for a GPU)",
    )
    p.add_argument(
        "--base-model", default=None, help="decay mode: HF directory or .gguf (default: shipped SmolLM2)"
    )
    p.add_argument("--device", default=None, help="default: cuda when visible, else cpu")
    p.add_argument("--seq-len", type=positive_int, default=None, help="default: 128 (tiny), 512 (decay)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="default: 8")
    p.add_argument(
        "--epochs", type=positive_int, default=None, help="passes over each arm; default 2 (tiny), 1 (decay)"
    )
    p.add_argument(
        "--refuse-short",
        action="store_true",
        help="refuse the run when an arm has fewer tokens than the budget (default: report it)",
    )
    p.add_argument(
        "--time-limit",
        type=_positive_float,
        default=900.0,
        help="refuse when the estimated run time exceeds this many seconds (default 900)",
    )
    p.set_defaults(func=cmd_verify_tiers)
