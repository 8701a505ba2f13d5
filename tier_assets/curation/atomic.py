"""Publishing files atomically: write a uniquely named temp sibling, then rename it into place.

Readers see the old file or the new one, never half of one. Every writer gets its own temp
name (process id + random), so two runs publishing the same file at once (the nightly
schedule and a manual backfill of one domain) never write into each other's temp file: the
last rename wins and both leave a whole file. Every file the project publishes goes through
here (tier Parquet, manifests, classifiers, caches, indexes, exports, reports, the catalog).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def temp_sibling(path: Path, suffix: str = "tmp") -> Path:
    """A hidden name next to ``path`` that no other writer uses (same directory, so the rename is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.{suffix}")


def publish(tmp: Path, target: Path) -> None:
    """Rename a finished temp file from ``temp_sibling`` onto ``target`` (for writers that stream)."""
    os.replace(tmp, target)


@contextmanager
def atomic_path(path: str | Path, suffix: str = "tmp") -> Iterator[Path]:
    """Yield a temp path to write to; rename it onto ``path`` on success, remove it on error.

    The temp path may be a file or a directory; a directory replaces an existing one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(target, suffix)
    try:
        yield tmp
        if tmp.is_dir() and target.is_dir():
            old = temp_sibling(target, "old")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            publish(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any, **dumps_kwargs: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, **dumps_kwargs))


def write_lines_atomic(path: str | Path, lines: Iterator[str]) -> Path:
    """Stream ``lines`` (each without its newline) into ``path``; memory stays flat."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")
    return Path(path)
