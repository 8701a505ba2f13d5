"""Model subcommands of ``tier-assets``: ``serve-llm``.

``add_model_commands(subparsers, parents)`` registers them on the main CLI's argparse
subparsers (``parents``: the options every command shares, such as ``--data-root``);
each sets ``func`` to a handler taking the parsed namespace and returning an exit code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tier_assets.cli import UserError, common_options, port, positive_int


def cmd_serve_llm(args: argparse.Namespace) -> int:
    from tier_assets.curation.llm_server import BindError, ServerLimits, serve

    if args.model is not None and not Path(args.model).exists():
        raise UserError(f"--model {args.model}: no such directory or file")

    try:
        serve(host=args.host, port=args.port, model=args.model,
              limits=ServerLimits(max_body_bytes=args.max_body_bytes, max_tokens=args.max_tokens_limit))
    except BindError as exc:
        raise UserError(f"{exc.strerror}; stop what listens there or give another --port") from exc
    return 0


def add_model_commands(subparsers: argparse._SubParsersAction,
                       parents: list[argparse.ArgumentParser] | None = None) -> None:
    """Register ``serve-llm`` on ``subparsers``, with the shared ``parents`` options."""
    parents = parents if parents is not None else [common_options()]
    serve = subparsers.add_parser("serve-llm", help="serve a local LLM over an OpenAI-compatible HTTP API",
                                  parents=parents)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=port, default=8000)
    serve.add_argument("--model", default=None,
                       help="HF model directory or .gguf file (default: embedded SmolLM2-135M-Instruct)")
    serve.add_argument("--max-body-bytes", type=positive_int, default=1 << 20,
                       help="refuse request bodies larger than this with HTTP 413 (default: 1 MiB)")
    serve.add_argument("--max-tokens-limit", type=positive_int, default=2048,
                       help="refuse requests asking for more max_tokens than this with HTTP 400 (default: 2048)")
    serve.set_defaults(func=cmd_serve_llm)
