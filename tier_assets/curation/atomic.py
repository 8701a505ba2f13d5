"""Publishing files atomically: write a uniquely named temp sibling, then rename it into place.

Readers see the old file or the new one, never half of one. Every writer gets its own temp
name (host + process id + random), so two runs publishing the same file at once (the nightly
schedule and a manual backfill of one domain) never write into each other's temp file: the
last rename wins and both leave a whole file. Every file the project publishes goes through
here (tier Parquet, manifests, classifiers, caches, indexes, exports, reports, the catalog).

Files that must change together (a partition's kept and rejected Parquet) are published with a
redo journal: ``write_journal`` durably lists the (temp, target) renames, the renames follow, and
the journal is removed; ``apply_journal`` finishes the renames of a writer that died in between.
The host in a temp name lets ``remove_orphan_temps`` tell a dead writer's temp on this host from a
live one's on another host that shares the filesystem.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "localhost"  # no dots: names split on them
JOURNAL_FORMAT = "tier_assets.journal/1"


def temp_sibling(path: Path, suffix: str = "tmp") -> Path:
    """A hidden name next to ``path`` that no other writer uses (same directory, so the rename is atomic).

    ``.{name}.{host}.{pid}.{random}.{suffix}``: ``temp_owner`` reads the host and pid back.
    """
    return path.with_name(f".{path.name}.{HOST}.{os.getpid()}.{uuid.uuid4().hex}.{suffix}")


def temp_owner(target: Path, temp: Path) -> tuple[str, int] | None:
    """(host, pid) of the writer of ``temp`` when it is a ``temp_sibling`` of ``target``, else None."""
    prefix = f".{target.name}."
    if temp.parent != target.parent or not temp.name.startswith(prefix):
        return None
    parts = temp.name[len(prefix):].split(".")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (another user's counts; a zombie counts too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphan_temps(target: Path, keep: Collection[Path] = ()) -> list[Path]:
    """Remove temp files of ``target`` whose writer ran on this host and is gone; return them.

    A killed writer cannot remove its own temp. Temps of live processes, of other hosts (their
    pids mean nothing here), of unknown name formats and those in ``keep`` (named by a journal)
    stay.
    """
    keep_names = {p.name for p in keep}
    try:
        siblings = list(target.parent.iterdir())
    except FileNotFoundError:
        return []
    removed = []
    for temp in siblings:
        owner = temp_owner(target, temp)
        if owner is None or temp.name in keep_names or owner[0] != HOST or pid_alive(owner[1]):
            continue
        if temp.is_file():
            temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a directory's entries (a rename), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created, never removed: removing a lock file races)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock; so does the kernel when the process is killed


def write_journal(journal: Path, renames: list[tuple[Path, Path]], base: Path) -> None:
    """Durably record the (temp, target) renames of one commit: temps, then the journal, reach the disk.

    Paths are stored relative to ``base``, so a data root can move. Once this returns, the commit
    is decided: ``apply_journal`` completes it whoever runs it.
    """
    for tmp, _ in renames:
        fsync_path(tmp)
    body = json.dumps({"format": JOURNAL_FORMAT,
                       "renames": [[str(t.relative_to(base)), str(d.relative_to(base))] for t, d in renames]})
    journal.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(journal) as tmp, tmp.open("w", encoding="utf-8") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    fsync_path(journal.parent)


def journal_renames(journal: Path, base: Path) -> list[tuple[Path, Path]]:
    """The (temp, target) renames a journal lists."""
    obj = json.loads(journal.read_text(encoding="utf-8"))
    if obj.get("format") != JOURNAL_FORMAT:
        raise ValueError(f"{journal}: unknown journal format {obj.get('format')!r}")
    return [(base / t, base / d) for t, d in obj["renames"]]


def apply_journal(journal: Path, base: Path) -> list[tuple[Path, Path]]:
    """Roll a written journal forward: rename each temp still present onto its target, remove the journal.

    A temp that is gone was renamed before the writer stopped. Idempotent, so a crash during
    recovery is recovered the same way. Returns the renames.
    """
    renames = journal_renames(journal, base)
    for tmp, target in renames:
        try:
            publish(tmp, target)
        except FileNotFoundError:
            continue
    for directory in sorted({target.parent for _, target in renames}):
        fsync_path(directory)
    journal.unlink(missing_ok=True)
    fsync_path(journal.parent)
    return renames


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
