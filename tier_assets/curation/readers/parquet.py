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


def _raw_text_preview(row: pa.RecordBatch) -> str:
    """The text column of a one-row batch as raw bytes, for the preview of a row that does not decode."""
    if "text" not in row.schema.names or not pa.types.is_string(row.schema.field("text").type):
        return ""
    raw = row.column("text").cast(pa.binary()).to_pylist()[0]
    return preview(raw) if raw is not None else ""


def _single_row_item(row: pa.RecordBatch, index: int, config: ReaderConfig) -> ReadItem:
    try:
        values = row.to_pylist()[0]
    except UnicodeDecodeError as exc:
        return Quarantined(index, "invalid_utf8", f"a string column of row {index}: {exc}", _raw_text_preview(row))
    return _row_item(values, index, config)


def _batch_items(batch: pa.RecordBatch, first_row: int, config: ReaderConfig) -> Iterator[ReadItem]:
    """The rows of a batch; when a string value is not UTF-8 (a damaged page), row by row, so
    only the rows that do not decode are quarantined."""
    try:
        rows = batch.to_pylist()
    except UnicodeDecodeError:
        for offset in range(batch.num_rows):
            yield _single_row_item(batch.slice(offset, 1), first_row + offset, config)
        return
    for offset, row in enumerate(rows):
        yield _row_item(row, first_row + offset, config)


def _row_group_items(parquet: pq.ParquetFile, group: int, first_row: int, config: ReaderConfig) -> Iterator[ReadItem]:
    """The rows of one row group; damage ends the group with one ``corrupt_parquet`` item."""
    index = first_row
    batches = parquet.iter_batches(batch_size=_BATCH_ROWS, row_groups=[group])
    while True:
        try:
            batch = next(batches, None)
        except (OSError, ValueError, pa.ArrowException) as exc:
            end = first_row + parquet.metadata.row_group(group).num_rows
            yield Quarantined(index, "corrupt_parquet",
                              f"row group {group}, rows {index}..{end - 1} lost: {type(exc).__name__}: {exc}")
            return
        if batch is None:
            return
        yield from _batch_items(batch, index, config)
        index += batch.num_rows


def read_parquet(path: Path, config: ReaderConfig) -> Iterator[ReadItem]:
    """Yield one item per row, row group by row group: row groups are independent, so a
    damaged one costs only its own rows and row numbers stay exact after it."""
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError, pa.ArrowException) as exc:  # ValueError: a footer string that is not UTF-8
        raise SourceFileError(path, str(exc)) from exc
    first_row = 0
    try:
        for group in range(parquet.num_row_groups):
            yield from _row_group_items(parquet, group, first_row, config)
            first_row += parquet.metadata.row_group(group).num_rows
    finally:
        parquet.close()
