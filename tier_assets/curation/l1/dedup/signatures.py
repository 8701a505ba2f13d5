"""Per-document dedup signatures as an Arrow table: the part of dedup worth caching and distributing.

``compute_signatures(docs, config)`` is a pure function of each document: per
document an exact hash of the normalized text, a MinHash signature and (when the
semantic stage is on) an embedding. Store it as Parquet per batch; compute it in any
grouping of documents (a Ray block, a whole batch) and the rows agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tier_assets.curation.l1.dedup.config import DedupConfig
from tier_assets.curation.l1.dedup.hashing import hash_texts
from tier_assets.curation.pipeline import Doc

MINHASH_META = b"tier_assets.dedup.minhash"
EMBEDDER_META = b"tier_assets.dedup.embedder"


def compute_signatures(docs: Sequence[Doc], config: DedupConfig, embedder: Any = None,
                       chunk: int = 1024) -> pa.Table:
    """Per-document dedup signatures, a pure function of ``docs`` (cache them per batch as Parquet).

    Columns: ``doc_id``, ``batch``, ``order`` (position in ``docs``, i.e. record order),
    ``exact_hash`` (xxh3-128 of ``normalize(text)``), ``minhash`` (list<uint32> of
    ``num_perm``) and, when ``config.semantic``, ``embedding`` (list<float32>: the
    ``embed_windows`` unit vectors of the document's windows, beginning first, one
    after the other). The schema metadata records the hashing fingerprint and the
    embedder version, which ``dedup`` checks.
    Documents are hashed ``chunk`` at a time to bound memory.
    """
    n = len(docs)
    exact_hashes, sigs = hash_texts([d["text"] for d in docs], config, chunk)
    columns: dict[str, pa.Array] = {
        "doc_id": pa.array([d["doc_id"] for d in docs], pa.string()),
        "batch": pa.array([d["batch"] for d in docs], pa.string()),
        "order": pa.array(np.arange(n, dtype=np.int64)),
        "exact_hash": pa.array(exact_hashes, pa.string()),
        "minhash": _list_array(sigs, pa.uint32()),
    }
    metadata = {MINHASH_META: config.minhash_fingerprint.encode()}
    if config.semantic:
        if embedder is None:
            raise ValueError("semantic dedup needs an embedder: pass one (or set semantic: false)")
        vectors = embedder.encode_windows([d["text"] for d in docs], config.embed_windows)
        flat = vectors.reshape(n, -1) if n else np.zeros((0, 0), np.float32)  # an empty partition has no width
        columns["embedding"] = _list_array(flat.astype(np.float32, copy=False), pa.float32())
        metadata[EMBEDDER_META] = f"{embedder.version} windows={config.embed_windows}".encode()
    return pa.table(columns).replace_schema_metadata(metadata)


def _list_array(matrix: np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    n, width = matrix.shape
    offsets = pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32) if n else np.zeros(1, np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1), value_type))


def matrix(column: pa.ChunkedArray, width: int, dtype: type, what: str) -> np.ndarray:
    """A list column of fixed length ``width`` as an (n, width) numpy matrix."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    if len(arr) and (lengths != width).any():
        raise ValueError(f"{what}: every list must have length {width} (signatures from another config?)")
    return np.asarray(arr.flatten().to_numpy(zero_copy_only=False), dtype=dtype).reshape(len(arr), width)
