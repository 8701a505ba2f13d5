"""One stage export: select in DuckDB, stream the texts in seeded order into shards, write the manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tier_assets.curation.atomic import write_text_atomic
from tier_assets.curation.catalog import connect
from tier_assets.curation.exports.chat import Unformattable, chat_messages
from tier_assets.curation.exports.select import STREAM_BATCH_ROWS, bound, select, stream_sql
from tier_assets.curation.exports.shards import (
    Manifest,
    ShardInfo,
    ShardWriter,
    Tally,
    build_manifest,
    remove_stale_shards,
    shard_name,
)
from tier_assets.curation.exports.spec import StageSpec
from tier_assets.curation.schema import loads
from tier_assets.curation.storage import TierStore


def format_record(spec: StageSpec, row: dict[str, Any]) -> dict[str, Any] | Unformattable:
    """One output record in the spec's record format, or why the row cannot be one."""
    base = {"doc_id": row["doc_id"], "tier": row["tier"], "domain": row["domain"]}
    if spec.record_format == "text":
        return {"text": row["text"], **base}
    signals = loads(row["signals"])
    if spec.record_format == "chat":
        messages = chat_messages(row["tier"], signals)
        return messages if isinstance(messages, Unformattable) else {"messages": messages, **base}
    item = signals.get(row["tier"].lower()) or {}
    if spec.output_format == "parquet":
        item = json.dumps(item, ensure_ascii=False, sort_keys=True)
    return {**base, "text": row["text"], "parent_ids": list(row["parent_ids"] or []), "item": item}


def export_stage(store: TierStore, spec: StageSpec, out_dir: str | Path) -> Manifest:
    """Sample the stage's mixture from the store, write its shards and ``manifest.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tally = Tally()
    shards: list[ShardInfo] = []
    con = connect(store)
    try:
        available, cell_req, tier_req = select(con, spec)
        stream = stream_sql(spec)
        reader = con.sql(stream, params=bound(spec, stream)).to_arrow_reader(STREAM_BATCH_ROWS)
        writer: ShardWriter | None = None
        try:
            for batch in reader:
                for row in batch.to_pylist():
                    record = format_record(spec, row)
                    if isinstance(record, Unformattable):
                        tally.skipped[record.reason] += 1
                        continue
                    if writer is None:
                        writer = ShardWriter(out, shard_name(spec, len(shards)), spec)
                    writer.write(record, row["tokens"])
                    tally.add(row)
                    if writer.docs >= spec.shard_max_docs:
                        shards.append(writer.close())
                        writer = None
            if writer is not None:
                shards.append(writer.close())
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    finally:
        con.close()
    remove_stale_shards(out, spec, shards)
    manifest = build_manifest(store, spec, out, available, cell_req, tier_req, tally, shards)
    write_text_atomic(manifest.path, json.dumps(manifest.as_dict(), ensure_ascii=False, indent=2) + "\n")
    return manifest
