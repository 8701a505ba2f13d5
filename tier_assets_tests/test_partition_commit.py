"""A partition's kept and rejected files are published together, and killed writers' temps are cleaned up.

Every crash here is a real process killed with SIGKILL at the point under test: the commit steps are the
store's own functions (``writer``, ``finish``, ``write_journal``, ``publish``) called one by one in a child
``python -c``, which kills itself after the step, or is killed by the test while it streams rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tier_assets.curation.atomic import HOST, temp_owner, temp_sibling
from tier_assets.curation.catalog import build_catalog, connect
from tier_assets.curation.storage import PartitionRef, TierStore

from .conftest import REPO

REF = PartitionRef("L1", "en", "b1")


def rows(tag: str, n: int, rejected: bool = False) -> list[dict]:
    """``n`` records whose text says which write they belong to."""
    extra = {"stage": "filter", "reason": "short", "detail": tag} if rejected else {}
    return [{"doc_id": f"{tag}-{i}", "text": f"{tag} text {i}", "tier": REF.tier, "domain": REF.domain,
             "batch": REF.batch, **extra} for i in range(n)]


def texts(store: TierStore, kind: str) -> set[str]:
    return {t.split(" ")[0] for t in store.read(REF, kind, columns=["text"])["text"].to_pylist()}


def temps(store: TierStore) -> list[Path]:
    """Every hidden temp file next to the partition's two files."""
    return sorted(p for kind in ("tiers", "rejected")
                  for p in store.partition_path(REF, kind).parent.glob(".part.parquet.*"))


def run_child(root: Path, body: str) -> subprocess.CompletedProcess:
    """Run ``body`` in a fresh interpreter with ``store``, ``ref``, ``rows`` and the atomic helpers in scope."""
    prelude = textwrap.dedent(f"""
        import os, signal
        from tier_assets.curation.atomic import publish, write_journal
        from tier_assets.curation.storage import PartitionRef, TierStore
        from tier_assets_tests.test_partition_commit import rows
        store = TierStore({str(root)!r})
        ref = PartitionRef({REF.tier!r}, {REF.domain!r}, {REF.batch!r})
    """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(body)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def kill_during_commit(root: Path, stop: str) -> None:
    """A child streams a NEW pair (7 kept, 3 rejected), writes the journal, and is SIGKILLed ``stop``."""
    proc = run_child(root, f"""
        kept, rejected = store.writer(ref, "tiers"), store.writer(ref, "rejected")
        for row in rows("new", 7):
            kept.write(row)
        for row in rows("new", 3, rejected=True):
            rejected.write(row)
        kept.finish(), rejected.finish()
        write_journal(store.journal_path(ref), [(kept.tmp, kept.path), (rejected.tmp, rejected.path)], store.root)
        if {stop!r} == "between renames":
            publish(kept.tmp, kept.path)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


@pytest.fixture
def store(tmp_path: Path) -> TierStore:
    """A data root whose partition holds an OLD pair: 5 kept, 2 rejected."""
    store = TierStore(tmp_path / "data")
    assert store.write_partition(REF, rows("old", 5), rows("old", 2, rejected=True)) == (5, 2)
    return store


def test_write_partition_publishes_both_files_and_counts(store: TierStore):
    assert store.write_partition(REF, rows("new", 4), rows("new", 3, rejected=True)) == (4, 3)
    assert (store.count(REF), store.count(REF, "rejected")) == (4, 3)
    assert texts(store, "tiers") == texts(store, "rejected") == {"new"}
    assert store.read_docs(REF, "rejected")[0]["reason"] == "short"
    assert not store.journal_path(REF).exists()
    assert temps(store) == []


ACCESSES: dict[str, Callable[[TierStore], object]] = {
    "count": lambda s: s.count(REF, "rejected"),
    "read": lambda s: s.read(REF),
    "exists": lambda s: s.exists(REF, "rejected"),
    "partitions": lambda s: s.partitions("L1"),
    "writer": lambda s: s.writer(REF, "rejected").abort(),
}


@pytest.mark.parametrize("stop", ["before renames", "between renames"])
@pytest.mark.parametrize("access", list(ACCESSES))
def test_killed_commit_rolls_forward_on_next_access(store: TierStore, stop: str, access: str):
    kill_during_commit(store.root, stop)
    assert store.journal_path(REF).exists()
    on_disk = {kind: store.partition_path(REF, kind) for kind in ("tiers", "rejected")}  # as DuckDB globs them
    seen = {kind: pq.read_metadata(path).num_rows for kind, path in on_disk.items()}
    assert seen == ({"tiers": 5, "rejected": 2} if stop == "before renames" else {"tiers": 7, "rejected": 2})
    assert len(temps(store)) == (2 if stop == "before renames" else 1)

    ACCESSES[access](store)

    assert not store.journal_path(REF).exists()
    assert temps(store) == []
    assert (store.count(REF), store.count(REF, "rejected")) == (7, 3)
    assert texts(store, "tiers") == texts(store, "rejected") == {"new"}


def test_catalog_sees_the_rolled_forward_pair(store: TierStore):
    kill_during_commit(store.root, "between renames")
    con = connect(store)
    try:
        assert con.execute("SELECT count(*) FROM l1").fetchone() == (7,)
        assert con.execute("SELECT count(*), min(detail) FROM l1_rejected").fetchone() == (3, "new")
    finally:
        con.close()
    assert not store.journal_path(REF).exists()
    kill_during_commit(store.root, "before renames")
    con = duckdb.connect(str(build_catalog(store)), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM l1_rejected").fetchone() == (3,)
    finally:
        con.close()
    assert temps(store) == []


def test_a_single_file_write_after_a_killed_commit_keeps_the_journaled_temps(store: TierStore):
    """The killed writer's temps are a dead pid's, but its journal names them: rolled forward, never removed."""
    kill_during_commit(store.root, "before renames")
    assert store.write(REF, rows("solo", 1, rejected=True), kind="rejected") == 1
    assert texts(store, "tiers") == {"new"} and store.count(REF) == 7
    assert texts(store, "rejected") == {"solo"}
    assert temps(store) == []


def test_writer_killed_mid_stream_leaves_a_temp_the_next_publish_removes(store: TierStore):
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from tier_assets.curation.storage import PartitionRef, TierStore
        from tier_assets_tests.test_partition_commit import rows
        store = TierStore({str(store.root)!r})
        ref = PartitionRef({REF.tier!r}, {REF.domain!r}, {REF.batch!r})
        kept = store.writer(ref, "tiers", chunk_rows=10)
        rejected = store.writer(ref, "rejected", chunk_rows=10)
        for i in range(10**9):
            kept.write(rows("lost", 1)[0])
            rejected.write(rows("lost", 1, rejected=True)[0])
            if i == 50:
                print("streaming", flush=True)
            time.sleep(0.001)
    """)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "streaming\n", proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()  # reaped: a zombie's pid still counts as alive
    assert proc.returncode == -signal.SIGKILL
    left = temps(store)
    assert [temp_owner(p.with_name("part.parquet"), p) for p in left] == [(HOST, proc.pid)] * 2
    assert left[0].stat().st_size > 0  # row groups reached the file before the kill
    assert (store.count(REF), store.count(REF, "rejected")) == (5, 2)  # the old pair, whole and readable
    assert texts(store, "tiers") == texts(store, "rejected") == {"old"}

    assert store.write_partition(REF, rows("new", 1), rows("new", 1, rejected=True)) == (1, 1)
    assert temps(store) == []
    assert texts(store, "tiers") == texts(store, "rejected") == {"new"}


def test_temps_of_live_writers_and_other_hosts_stay(store: TierStore):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    target = store.partition_path(REF)
    mine = temp_sibling(target)  # this test's own pid: a live writer
    other_host = target.with_name(f".part.parquet.not-{HOST}.{dead_pid}.{uuid.uuid4().hex}.tmp")
    dead_here = target.with_name(f".part.parquet.{HOST}.{dead_pid}.{uuid.uuid4().hex}.tmp")
    unrelated = target.with_name(".part.parquet.notes")
    for path in (mine, other_host, dead_here, unrelated):
        path.write_bytes(b"partial")
    assert temp_owner(target, mine) == (HOST, os.getpid())

    store.write_partition(REF, rows("new", 2), [])

    assert sorted(p.name for p in temps(store)) == sorted(p.name for p in (mine, other_host, unrelated))
    assert not dead_here.exists()
    assert mine.read_bytes() == other_host.read_bytes() == b"partial"
