"""FAISS helpers: inner-product indexes on GPU when one is usable, else CPU.

Vectors are expected L2-normalized (the embedder does this), so inner product is
cosine similarity. ``range_neighbors`` finds every neighbour above a similarity
threshold with k-NN searches of growing k, because GPU indexes have no range
search: the same code then gives the same neighbour sets on either device.
"""

from __future__ import annotations

import logging
from typing import Any

import faiss
import numpy as np

log = logging.getLogger(__name__)

INDEX_KINDS = ("flat", "ivf")
GPU_MAX_K = 2048  # faiss GPU k-NN limit; larger searches fall back to a CPU copy


def gpu_available() -> bool:
    """True when this faiss build has GPU support and a GPU is visible."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def faiss_device() -> str:
    """``"cuda"`` or ``"cpu"``: where ``make_index`` puts new indexes."""
    return "cuda" if gpu_available() else "cpu"


class VectorIndex:
    """A faiss inner-product index plus the device it lives on (``"cuda"`` or ``"cpu"``)."""

    def __init__(self, index: faiss.Index, dim: int, kind: str, device: str, gpu_resources: Any = None):
        self.index = index
        self.dim = dim
        self.kind = kind
        self.device = device
        self._gpu_resources = gpu_resources  # must outlive the GPU index
        self._cpu_copy: faiss.Index | None = None

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        """Add vectors (ids are 0.. in insertion order); an untrained IVF index trains on them first."""
        x = _as_matrix(vectors, self.dim)
        if not self.index.is_trained:
            self.index.train(x)
        self.index.add(x)
        self._cpu_copy = None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k-NN by inner product: (similarities, ids), each (n, k); k is clamped to ``ntotal``."""
        q = _as_matrix(queries, self.dim)
        k = min(k, self.ntotal)
        if k <= 0 or len(q) == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        index = self.index
        if self.device == "cuda" and k > GPU_MAX_K:
            if self._cpu_copy is None:
                self._cpu_copy = faiss.index_gpu_to_cpu(self.index)
            index = self._cpu_copy
        sims, ids = index.search(q, k)
        return sims, ids


def make_index(dim: int, kind: str = "flat", nlist: int = 1024, nprobe: int = 16,
               use_gpu: bool | None = None) -> VectorIndex:
    """An empty inner-product index: exact ``flat`` or approximate ``ivf`` (``nlist`` cells).

    ``use_gpu=None`` picks the GPU when ``gpu_available()``; the choice is logged and
    kept in ``VectorIndex.device``.
    """
    if dim <= 0:
        raise ValueError(f"dim must be positive, got {dim}")
    if kind not in INDEX_KINDS:
        raise ValueError(f"kind must be one of {INDEX_KINDS}, got {kind!r}")
    if kind == "ivf" and (nlist <= 0 or nprobe <= 0):
        raise ValueError(f"nlist and nprobe must be positive, got {nlist}, {nprobe}")
    if kind == "flat":
        cpu_index = faiss.IndexFlatIP(dim)
    else:
        cpu_index = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
    want_gpu = gpu_available() if use_gpu is None else use_gpu
    if want_gpu and not gpu_available():
        raise RuntimeError("use_gpu=True but faiss has no GPU support or no GPU is visible")
    if want_gpu:
        resources = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(resources, 0, cpu_index)
        if kind == "ivf":
            faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", nprobe)
        result = VectorIndex(index, dim, kind, "cuda", resources)
    else:
        if kind == "ivf":
            faiss.ParameterSpace().set_index_parameter(cpu_index, "nprobe", nprobe)
        result = VectorIndex(cpu_index, dim, kind, "cpu")
    log.info("faiss %s inner-product index, dim=%d, on %s", kind, dim, result.device)
    return result


def range_neighbors(index: VectorIndex, queries: np.ndarray, threshold: float,
                    k: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every indexed vector with similarity >= ``threshold`` to each query, as CSR arrays.

    Returns ``(lims, ids, sims)`` like faiss ``range_search``: the neighbours of query
    ``i`` are ``ids[lims[i]:lims[i + 1]]``, sorted by decreasing similarity. Rows whose
    k-th neighbour still passes are searched again with twice the k, so the result is
    complete however many neighbours a query has.
    """
    q = _as_matrix(queries, index.dim)
    n = len(q)
    found_ids: list[np.ndarray] = [np.zeros(0, np.int64)] * n
    found_sims: list[np.ndarray] = [np.zeros(0, np.float32)] * n
    todo = np.arange(n)
    k = max(1, k)
    while len(todo) and index.ntotal:
        sims, ids = index.search(q[todo], k)
        width = sims.shape[1]
        for row, s, i in zip(todo, sims, ids, strict=True):
            keep = (s >= threshold) & (i >= 0)
            found_ids[row] = i[keep].astype(np.int64)
            found_sims[row] = s[keep]
        saturated = (sims[:, -1] >= threshold) if width else np.zeros(len(todo), bool)
        if width >= index.ntotal:
            break
        todo = todo[saturated]
        k = width * 2
    lims = np.zeros(n + 1, np.int64)
    lims[1:] = np.cumsum([len(x) for x in found_ids])
    ids_out = np.concatenate(found_ids) if n else np.zeros(0, np.int64)
    sims_out = np.concatenate(found_sims) if n else np.zeros(0, np.float32)
    return lims, ids_out, sims_out


def _as_matrix(x: np.ndarray, dim: int) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"expected an (n, {dim}) matrix, got shape {x.shape}")
    return x
