"""L0 through real Dagster: in-process materialization, the CLI, and the inbox sensor."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, SkipReason, build_sensor_context, materialize

from tier_assets.curation.l0 import accounting_problems, validate_text
from tier_assets.curation.readers import ReaderConfig
from tier_assets.curation.sources import BatchManifest, SourceEntry, now_iso, read_manifest, write_manifest
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets.defs.l0 import l0_raw
from tier_assets.defs.registry import BATCH_PARTITIONS_NAME, partition_key
from tier_assets.defs.resources import TierStoreResource
from tier_assets.defs.sensors import inbox_sensor

from .conftest import DEMO_DATA, REPO

DOLMA = DEMO_DATA / "en" / "cc-main-2019-30-dolma.jsonl.gz"


def _bad_jsonl(path: Path) -> Path:
    """A JSONL file with one good record and one of each bad kind a JSONL line can be."""
    lines = [
        json.dumps({"id": "good-1", "text": "A perfectly good document about rivers and lakes.",
                    "metadata": {"url": "https://example.org/a"}}).encode(),
        b'{"id": "broken", "text": "unterminated',
        b'{"id": "latin1", "text": "caf\xe9"}',
        json.dumps({"id": "empty", "text": "   \n\t "}).encode(),
        json.dumps({"id": "binary", "text": "\x00\x01\x02 binary junk"}).encode(),
        json.dumps({"id": "big", "text": "x" * 300_000}).encode(),
        json.dumps({"id": "surrogate", "text": "bad \ud800 half"}, ensure_ascii=True).encode(),
        json.dumps({"id": "good-2", "text": "Second good document.", "meta": {"url": "https://example.org/b"}}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _register(instance: DagsterInstance, root: Path, batch: str, entries: list[SourceEntry]) -> None:
    write_manifest(root, BatchManifest(batch, now_iso(), entries))
    instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, [batch])


def test_validate_text_reasons() -> None:
    cfg = ReaderConfig(max_record_bytes=100)
    assert validate_text("hello", cfg) is None
    assert validate_text(" \n ", cfg)[0] == "empty_text"
    assert validate_text("a\x00b", cfg)[0] == "binary_content"
    assert validate_text("x" * 101, cfg)[0] == "over_size_cap"
    assert validate_text("a\ud800b", cfg)[0] == "invalid_utf8"


def test_l0_materializes_through_dagster_with_quarantine(dagster_instance, data_root, tmp_path) -> None:
    bad = _bad_jsonl(tmp_path / "bad.jsonl")
    _register(dagster_instance, data_root, "b001", [
        SourceEntry("dolma", "en", "jsonl", str(DOLMA), (), "dolma/cc.jsonl.gz"),
        SourceEntry("bad", "en", "jsonl", str(bad), (), "bad/bad.jsonl"),
    ])
    result = materialize(
        [l0_raw], instance=dagster_instance, partition_key=partition_key("en", "b001"),
        resources={"tier_store": TierStoreResource(data_root=str(data_root))},
        run_config={"ops": {"l0_raw": {"config": {"max_record_bytes": 250_000}}}},
    )
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("records_accounted", True)]
    meta = result.asset_materializations_for_node("l0_raw")[0].metadata
    # the Dolma file has 697 records, 27 of them with empty text; the bad file has 8 lines, 2 good
    assert meta["records_read"].value == 697 + 8
    assert meta["records_kept"].value == 670 + 2
    assert meta["records_quarantined"].value == 27 + 6

    con = duckdb.connect(str(data_root / "catalog.duckdb"), read_only=True)
    reasons = dict(con.sql("select reason, count(*) from l0_rejected where source = 'bad' group by 1").fetchall())
    assert reasons == {"malformed_json": 1, "invalid_utf8": 2, "empty_text": 1, "binary_content": 1,
                       "over_size_cap": 1}
    row = con.execute("select url, source_doc_id, record_index, byte_offset, crawl_date from l0 "
                  "where source = 'dolma' order by record_index limit 1").fetchall()[0]
    assert row[0].startswith("http") and row[1] and row[2] == 0 and row[3] == 0 and row[4].startswith("2019-")
    good = con.sql("select source_doc_id, url from l0 where source = 'bad' order by record_index").fetchall()
    assert good == [("good-1", "https://example.org/a"), ("good-2", "https://example.org/b")]


def test_unopenable_file_fails_the_run_naming_it(dagster_instance, data_root) -> None:
    missing = data_root / "nope" / "missing.jsonl.gz"
    _register(dagster_instance, data_root, "b002", [SourceEntry("x", "en", "jsonl", str(missing), (), "x/m")])
    result = materialize([l0_raw], instance=dagster_instance, partition_key=partition_key("en", "b002"),
                         resources={"tier_store": TierStoreResource(data_root=str(data_root))},
                         raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert str(missing) in failure.message or str(missing) in str(failure.cause)
    # nothing half-written is left behind
    assert not TierStore(data_root).exists(PartitionRef("L0", "en", "b002"))


def test_truncated_gzip_keeps_what_was_read(dagster_instance, data_root, tmp_path) -> None:
    raw = DOLMA.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    _register(dagster_instance, data_root, "b003", [SourceEntry("cut", "en", "jsonl", str(cut), (), "cut")])
    result = materialize([l0_raw], instance=dagster_instance, partition_key=partition_key("en", "b003"),
                         resources={"tier_store": TierStoreResource(data_root=str(data_root))})
    assert result.success
    store = TierStore(data_root)
    ref = PartitionRef("L0", "en", "b003")
    rejected = store.read(ref, "rejected").to_pylist()
    assert rejected[-1]["reason"] == "truncated_gzip"
    with gzip.open(DOLMA, "rt") as fh:
        total = sum(1 for _ in fh)
    assert 100 < store.count(ref) + len(rejected) - 1 < total


def test_accounting_check_detects_a_record_written_twice(data_root) -> None:
    store = TierStore(data_root)
    ref = PartitionRef("L0", "en", "b9")
    row = {"doc_id": "d1", "tier": "L0", "domain": "en", "batch": "b9", "text": "t", "source_file": "f",
           "record_index": 0}
    store.write(ref, [row, dict(row)])
    store.write(ref, [], kind="rejected")
    assert accounting_problems(store, ref, expected_read=2) == ["1 duplicate doc_ids across kept and quarantined"]
    assert "!= read 3" in accounting_problems(store, ref, expected_read=3)[0]


def test_inbox_sensor_turns_files_into_batches(dagster_instance, data_root) -> None:
    inbox = data_root / "inbox"
    (inbox / "en").mkdir(parents=True)
    (inbox / "math").mkdir(parents=True)
    shutil.copy(DOLMA, inbox / "en" / "drop.jsonl.gz")
    shutil.copy(DEMO_DATA / "math" / "stackexchange-sample-a.jsonl", inbox / "math" / "se.jsonl")
    (inbox / "math" / "notes.xyz").write_text("what format is this?")
    (inbox / "en" / ".partial.jsonl").write_text("{}")  # hidden: still being written
    resources = {"tier_store": TierStoreResource(data_root=str(data_root))}

    with build_sensor_context(instance=dagster_instance, resources=resources) as ctx:
        result = inbox_sensor(ctx)
    requests = result.run_requests
    assert len(requests) == 2
    (add,) = result.dynamic_partitions_requests
    (batch,) = add.partition_keys
    assert batch.startswith("inbox-")
    assert sorted(r.partition_key for r in requests) == sorted([f"{batch}|en", f"{batch}|math"])
    assert {r.run_key for r in requests} == {f"l0:{batch}:en", f"l0:{batch}:math"}
    manifest = read_manifest(data_root, batch)
    assert sorted((e.domain, e.format) for e in manifest.entries) == [("en", "jsonl"), ("math", "jsonl")]
    assert all(Path(e.path).is_file() and "landing" in e.path for e in manifest.entries)
    assert not (inbox / "en" / "drop.jsonl.gz").exists()
    assert (inbox / "en" / ".partial.jsonl").exists()
    assert (inbox / "_unrecognized" / "math" / "notes.xyz.reason.txt").exists()

    # once the partition exists and the inbox is empty, the next tick requests nothing
    dagster_instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, [batch])
    with build_sensor_context(instance=dagster_instance, resources=resources) as ctx:
        assert isinstance(inbox_sensor(ctx), SkipReason)

    # the requested run executes for real
    result = materialize([l0_raw], instance=dagster_instance, partition_key=requests[0].partition_key,
                         resources=resources)
    assert result.success


def test_cli_materialize_and_definitions_validate(tmp_path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    root = tmp_path / "data"
    env = {**os.environ, "DAGSTER_HOME": str(home), "TIER_ASSETS_DATA_ROOT": str(root)}
    bin_dir = Path(sys.executable).parent
    out = subprocess.run([str(bin_dir / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
                         cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    instance = DagsterInstance.from_config(str(home))
    _register(instance, root, "cli-1", [SourceEntry("se", "math", "jsonl",
                                                    str(DEMO_DATA / "math" / "stackexchange-sample-a.jsonl"),
                                                    (), "se/a.jsonl")])
    out = subprocess.run(
        [str(bin_dir / "dagster"), "asset", "materialize", "-m", "tier_assets.definitions",
         "--select", "l0_raw", "--partition", "cli-1|math"],
        cwd=REPO, env=env, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert TierStore(root).count(PartitionRef("L0", "math", "cli-1")) == 10
    runs = instance.get_runs()
    assert len(runs) == 1 and runs[0].tags.get("dagster/partition") == "cli-1|math"


@pytest.mark.parametrize("domain", ["en"])
def test_reingest_is_idempotent(dagster_instance, data_root, domain) -> None:
    _register(dagster_instance, data_root, "b010", [SourceEntry("dolma", domain, "jsonl", str(DOLMA), (), "d")])
    res = {"tier_store": TierStoreResource(data_root=str(data_root))}
    store = TierStore(data_root)
    ref = PartitionRef("L0", domain, "b010")
    materialize([l0_raw], instance=dagster_instance, partition_key=partition_key(domain, "b010"), resources=res)
    first = store.read(ref).column("doc_id").to_pylist()
    materialize([l0_raw], instance=dagster_instance, partition_key=partition_key(domain, "b010"), resources=res)
    assert store.read(ref).column("doc_id").to_pylist() == first
    assert len(set(first)) == 670
    assert not list(store.partition_path(ref).parent.glob("*.tmp"))
