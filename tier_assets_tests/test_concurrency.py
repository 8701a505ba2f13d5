"""Two partitions materialized at the same time: no corruption, no lost records."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
from dagster import DagsterInstance

from tier_assets.curation.accounting import one_to_one_problems
from tier_assets.curation.l0 import accounting_problems
from tier_assets.curation.sources import BatchManifest, SourceEntry, now_iso, write_manifest
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets.defs.partitions import BATCH_PARTITIONS_NAME

from .conftest import DEMO_DATA, REPO


def test_two_partitions_at_once(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    root = tmp_path / "data"
    instance = DagsterInstance.from_config(str(home))
    write_manifest(root, BatchManifest("b1", now_iso(), [
        SourceEntry("rp", "en", "jsonl", str(DEMO_DATA / "en" / "redpajama-c4-sample.jsonl"), (), "rp"),
        SourceEntry("se", "math", "jsonl", str(DEMO_DATA / "math" / "stackexchange-sample-a.jsonl"), (), "se"),
    ]))
    instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, ["b1"])
    env = {**os.environ, "DAGSTER_HOME": str(home), "TIER_ASSETS_DATA_ROOT": str(root)}
    dagster = str(Path(sys.executable).parent / "dagster")
    procs = [
        subprocess.Popen([dagster, "asset", "materialize", "-m", "tier_assets.definitions", "--select",
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
