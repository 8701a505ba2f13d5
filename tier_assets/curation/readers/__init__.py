"""L0 readers by format. Each is ``reader(path, config) -> Iterator[Extracted | Quarantined]``."""

from __future__ import annotations

import importlib
from pathlib import Path

from tier_assets.curation.readers.base import (
    Extracted,
    Quarantined,
    Reader,
    ReaderConfig,
    ReadItem,
    SourceFileError,
)

# format -> (module, function); imported on first use so a format's heavy deps load only when needed
_READERS: dict[str, tuple[str, str]] = {
    "jsonl": ("tier_assets.curation.readers.jsonl", "read_jsonl"),
    "parquet": ("tier_assets.curation.readers.parquet", "read_parquet"),
    "warc": ("tier_assets.curation.readers.warc", "read_warc"),
    "wet": ("tier_assets.curation.readers.warc", "read_wet"),
    "html": ("tier_assets.curation.readers.html", "read_html"),
    "code": ("tier_assets.curation.readers.code", "read_code_file"),
}
FORMATS = tuple(_READERS)

_SUFFIXES = {
    ".jsonl": "jsonl", ".jsonl.gz": "jsonl", ".json.gz": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".warc": "warc", ".warc.gz": "warc",
    ".wet": "wet", ".warc.wet.gz": "wet", ".wet.gz": "wet",
    ".html": "html", ".htm": "html", ".html.gz": "html",
}


def get_reader(fmt: str) -> Reader:
    if fmt not in _READERS:
        raise ValueError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}")
    module, name = _READERS[fmt]
    return getattr(importlib.import_module(module), name)


def infer_format(path: str | Path) -> str | None:
    """The format of a file from its name (longest matching suffix), or None."""
    name = Path(path).name.lower()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return _SUFFIXES[suffix]
    from tier_assets.curation.readers.code import language_of  # late: avoids a cycle

    return "code" if language_of(Path(path)) else None


__all__ = [
    "Extracted", "Quarantined", "Reader", "ReaderConfig", "ReadItem", "SourceFileError",
    "FORMATS", "get_reader", "infer_format",
]
