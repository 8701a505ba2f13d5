"""Model interfaces: embedder (sentence-transformers), vector search (FAISS), LLM backends."""

from __future__ import annotations

import os


def prepare_local_loading() -> None:
    """Before loading a model: never reach for a hub (``HF_HUB_OFFLINE=1`` unless set), and no per-load
    "Loading weights" progress bar, which fills every CLI call's stderr and every run's log."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
