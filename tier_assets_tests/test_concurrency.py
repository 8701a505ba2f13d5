"""Two partitions materialized at the same time: no corruption, no lost records."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance

from tier_assets.curation.accounting import one_to_one_problems
from tier_assets.curation.atomic import atomic_path, write_json_atomic
from tier_assets.curation.l0 import accounting_problems
from tier_assets.curation.l2.distill import QualityClassifier
from tier_assets.curation.sources import BatchManifest, SourceEntry, now_iso, write_manifest
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets.defs.registry import BATCH_PARTITIONS_NAME

from .conftest import DEMO_DATA, REPO

DAGSTER = str(Path(sys.executable).parent / "dagster")


def _batch_on_instance(tmp_path: Path, entries: list[SourceEntry]) -> tuple[DagsterInstance, Path, dict[str, str]]:
    """A real instance and data root holding batch ``b1`` of ``entries``, and the environment of a CLI run on them."""
    home = tmp_path / "home"
    home.mkdir()
    root = tmp_path / "data"
    instance = DagsterInstance.from_config(str(home))
    write_manifest(root, BatchManifest("b1", now_iso(), entries))
    instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, ["b1"])
    return instance, root, {**os.environ, "DAGSTER_HOME": str(home), "TIER_ASSETS_DATA_ROOT": str(root)}


def test_two_partitions_at_once(tmp_path):
    instance, root, env = _batch_on_instance(tmp_path, [
        SourceEntry("rp", "en", "jsonl", str(DEMO_DATA / "en" / "redpajama-c4-sample.jsonl"), (), "rp"),
        SourceEntry("se", "math", "jsonl", str(DEMO_DATA / "math" / "stackexchange-sample-a.jsonl"), (), "se"),
    ])
    procs = [
        subprocess.Popen([DAGSTER, "asset", "materialize", "-m", "tier_assets.definitions", "--select",
                          "l0_raw,l1_filtered", "--partition", f"b1|{domain}"],
                         cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for domain in ("en", "math")
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outputs)

    store = TierStore(root)
    for domain, n in (("en", 10), ("math", 10)):
        ref = PartitionRef("L0", domain, "b1")
        assert store.count(ref) + store.count(ref, "rejected") == n
        assert accounting_problems(store, ref) == []
        assert one_to_one_problems(store, "L0", "L1", domain, "b1") == []
    assert not list(root.rglob("*.tmp"))
    con = duckdb.connect(str(store.catalog_path), read_only=True)
    assert con.execute("select count(*) from l0").fetchall()[0][0] == 20
    runs = instance.get_runs()
    assert len(runs) == 2 and all(r.is_success for r in runs)


@pytest.mark.heavy  # two LLM-labelled classifier runs: ~2.5 minutes of the CI's 25 (atomic publishing: tests below)
def test_two_classifier_runs_of_one_domain_at_once(tmp_path):
    """The nightly schedule and a manual backfill train one domain's classifier at the same time."""
    instance, root, env = _batch_on_instance(tmp_path, [
        SourceEntry("rp", "en", "jsonl", str(DEMO_DATA / "en" / "redpajama-c4-sample.jsonl"), (), "rp"),
        SourceEntry("cc", "en", "jsonl", str(DEMO_DATA / "en" / "redpajama-cc-2023-06-sample.jsonl"), (), "cc"),
    ])
    first = subprocess.run([DAGSTER, "asset", "materialize", "-m", "tier_assets.definitions", "--select",
                            "l0_raw,l1_filtered", "--partition", "b1|en"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    config = json.dumps({"ops": {"l2_classifier": {"config": {"overrides_yaml": "seeds: 4\nmax_references: 1\nmax_chars: 300"}}}})
    procs = [
        subprocess.Popen([DAGSTER, "asset", "materialize", "-m", "tier_assets.definitions", "--select",
                          "l2_classifier", "--partition", "en", "--config-json", config],
                         cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outputs)

    base = root / "models" / "l2_classifier" / "en"
    version = json.loads((base / "current.json").read_text())["version"]
    clf = QualityClassifier.load(base / version)  # whole files: the card and weights parse
    assert clf.version == version
    seeds = [json.loads(line) for line in (base / version / "seeds.jsonl").read_text().splitlines()]
    assert seeds and all(s["doc_id"] for s in seeds)
    assert not [p for p in root.rglob(".*") if p.name.endswith((".tmp", ".old"))], "temp files left behind"
    assert [r.is_success for r in instance.get_runs()].count(True) == 3


def test_writers_of_one_file_never_share_a_temp_file(tmp_path):
    """A writer that is mid-write when another publishes the same file still publishes a whole file."""
    target = tmp_path / "current.json"
    with atomic_path(target) as slow:
        slow.write_text('{"version": "slow"')  # half written when the other writer starts
        write_json_atomic(target, {"version": "fast"})
        assert json.loads(target.read_text()) == {"version": "fast"}
        with slow.open("a") as fh:
            fh.write("}")
    assert json.loads(target.read_text()) == {"version": "slow"}
    assert [p.name for p in tmp_path.iterdir()] == ["current.json"]


def test_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "card.json"
    write_json_atomic(target, {"ok": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]


def test_every_published_file_goes_through_the_atomic_helper():
    """No hand-rolled temp-file-and-rename outside ``curation/atomic.py`` (fixed temp names collide)."""
    offenders = []
    for path in (REPO / "tier_assets").rglob("*.py"):
        if path.name == "atomic.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"os\.replace\(|\btmp\w*\.replace\(|with_name\(f?[\"']\.|[\"']\.[\w.]+\.tmp", line):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert offenders == []
