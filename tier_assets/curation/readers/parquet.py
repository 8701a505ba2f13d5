"""Parquet reader: rows streamed in batches, with the same field conventions as JSONL.

Each row becomes a dict and goes through ``parse_json_record``, so a Dolma or RedPajama
dataset reads the same whether it is stored as JSONL or Parquet. Rows have no byte
offset; ``record_index`` is the row number in the file. Row groups are read one at a
time (pyarrow reads ahead across them otherwise), so memory stays bounded and damage
stays local to its row group.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tier_assets.curation.readers.base import Quarantined, ReaderConfig, ReadItem, SourceFileError, preview
from tier_assets.curation.readers.jsonl import parse_json_record

_BATCH_ROWS = 1024  # bounded memory per batch; large enough that per-batch overhead is noise


def _row_item(row: dict[str, Any], index: int, config: ReaderConfig) -> ReadItem:
    """One row as a document, or quarantined when its text is missing or too large."""
    text = row.get("text", row.get("content"))
    if not isinstance(text, str):
        # checked here, not in parse_json_record: Parquet values (dates, bytes) need default=str to preview
        return Quarantined(index, "missing_text", "no string 'text' field", preview(json.dumps(row, default=str)))
    if len(text) * 4 > config.max_record_bytes and len(text.encode("utf-8")) > config.max_record_bytes:
        return Quarantined(index, "over_size_cap", f"text is over {config.max_record_bytes} bytes", preview(text))
    return parse_json_record(row, index, None)


def _row_group_items(parquet: pq.ParquetFile, group: int, first_row: int, config: ReaderConfig) -> Iterator[ReadItem]:
    """The rows of one row group; damage ends the group with one ``corrupt_parquet`` item."""
    index = first_row
    batches = parquet.iter_batches(batch_size=_BATCH_ROWS, row_groups=[group])
    while True:
        try:
            batch = next(batches, None)
        except (OSError, pa.ArrowException) as exc:
            end = first_row + parquet.metadata.row_group(group).num_rows
            yield Quarantined(index, "corrupt_parquet",
                              f"row group {group}, rows {index}..{end - 1} lost: {type(exc).__name__}: {exc}")
            return
        if batch is None:
            return
        for row in batch.to_pylist():
            yield _row_item(row, index, config)
            index += 1


def read_parquet(path: Path, config: ReaderConfig) -> Iterator[ReadItem]:
    """Yield one item per row, row group by row group: row groups are independent, so a
    damaged one costs only its own rows and row numbers stay exact after it."""
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise SourceFileError(path, str(exc)) from exc
    first_row = 0
    try:
        for group in range(parquet.num_row_groups):
            yield from _row_group_items(parquet, group, first_row, config)
            first_row += parquet.metadata.row_group(group).num_rows
    finally:
        parquet.close()
