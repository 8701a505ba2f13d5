"""One record schema for every tier (L0 raw to L4 organized).

Every tier stores the same columns so that DuckDB can union tiers, lineage can
follow ``parent_ids`` from any record down to its L0 source, and per-stage
signals / model versions live in JSON columns that later stages extend without a
schema migration.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pyarrow as pa

TIERS = ("L0", "L1", "L2", "L3", "L4")
DOMAINS = ("en", "zh", "math", "code")
# Han characters (CJK unified ideographs, extension A, compatibility): how the zh domain's text is told apart
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

RECORD_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("parent_ids", pa.list_(pa.string()), nullable=False),
        pa.field("tier", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("batch", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        # provenance
        pa.field("source", pa.string()),
        pa.field("source_file", pa.string()),
        pa.field("record_index", pa.int64()),
        pa.field("byte_offset", pa.int64()),
        pa.field("source_doc_id", pa.string()),
        pa.field("warc_record_id", pa.string()),
        pa.field("url", pa.string()),
        pa.field("crawl_date", pa.string()),
        # content descriptors
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float64()),
        pa.field("n_chars", pa.int64()),
        pa.field("score", pa.float64()),
        # per-stage signals ({"stage": {...}}), model/recipe versions, source metadata
        pa.field("signals", pa.string()),
        pa.field("models", pa.string()),
        pa.field("meta", pa.string()),
    ]
)

REJECT_FIELDS = [
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("detail", pa.string()),
]
REJECTED_SCHEMA = pa.schema(list(RECORD_SCHEMA) + REJECT_FIELDS)

RECORD_COLUMNS = tuple(RECORD_SCHEMA.names)
REJECTED_COLUMNS = tuple(REJECTED_SCHEMA.names)
JSON_COLUMNS = ("signals", "models", "meta")


def stable_id(*parts: object) -> str:
    """A 24-hex-digit id derived only from ``parts``, so re-runs give the same ids."""
    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        h.update(str(part).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def derive_doc_id(tier: str, parent_ids: list[str], variant: str = "") -> str:
    """Id of a record made from ``parent_ids`` in ``tier`` (``variant`` tells outputs apart)."""
    return stable_id(tier, *parent_ids, variant)


def dumps(value: Any) -> str | None:
    """Compact, key-sorted JSON for the JSON columns (None stays None)."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def loads(value: str | None) -> Any:
    return json.loads(value) if value else {}


def empty_record(**fields: Any) -> dict[str, Any]:
    """A record dict with every schema column present (missing ones are None)."""
    rec: dict[str, Any] = dict.fromkeys(RECORD_COLUMNS)
    rec["parent_ids"] = []
    rec.update(fields)
    return rec


def to_table(rows: list[dict[str, Any]], rejected: bool = False) -> pa.Table:
    """Rows (dicts with JSON columns as dicts or strings) -> an Arrow table of the tier schema."""
    schema = REJECTED_SCHEMA if rejected else RECORD_SCHEMA
    cols: dict[str, list[Any]] = {name: [] for name in schema.names}
    for row in rows:
        for name in schema.names:
            value = row.get(name)
            if name in JSON_COLUMNS and value is not None and not isinstance(value, str):
                value = dumps(value)
            elif name == "parent_ids" and value is None:
                value = []
            elif name == "n_chars" and value is None and row.get("text") is not None:
                value = len(row["text"])
            cols[name].append(value)
    return pa.table(cols, schema=schema)
