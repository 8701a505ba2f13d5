"""A Dagster run of ``l3_refined`` SIGKILLed mid-partition: the re-run pays only for the LLM calls not yet paid,
and writes the partition an uninterrupted run writes.

Each run is the real ``dagster asset materialize`` CLI in its own process group, on a real instance in a temp
DAGSTER_HOME (the project's dagster.yaml) and a temp data root, with the embedded LLM. The step runs in the run's
process (the in-process executor): the multiprocess one adds a step process and about 10 s per run, and kills
and caches the same way. The L2 input is two demo documents written with ``TierStore``, so no L2 classifier is
trained. A paid call is one record in the partition's LLM cache file (appended once per answered request, see
``curation/llm_cache.py``); the killed run is stopped as soon as the first one lands, seconds of LLM work
before the partition is written.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus

from tier_assets.curation.llm_cache import cache_path
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets.defs.registry import BATCH_PARTITIONS_NAME, partition_key_string

from .conftest import DEMO_DATA, REPO, stop_process_group

pytestmark = pytest.mark.slow

DOMAIN, BATCH = "en", "b1"
L2, L3 = PartitionRef("L2", DOMAIN, BATCH), PartitionRef("L3", DOMAIN, BATCH)
SOURCE = DEMO_DATA / "en" / "redpajama-cc-2023-06-sample.jsonl"
LINES = (0, 8)  # best-scored first: the first one's Q&A is judged and kept, the second's is truncated
# one Q&A per document, one document per generate call, short outputs; every output the judge sees is kept,
# so the partition has kept and rejected records and the judge is paid
L3_SMALL = {"formats": {"en": ["qa"]}, "max_new_tokens": 64, "min_new_tokens": 8, "batch_size": 1,
            "max_source_chars": 400, "budget_tokens": 4000, "min_faithfulness": 0.0}
RUN_TIMEOUT = 300


@dataclass
class Deployment:
    """A Dagster home and a data root: one place the asset is materialized."""

    home: Path
    root: Path
    log: Path

    @property
    def cache(self) -> Path:
        return cache_path(self.root, "L3", DOMAIN, BATCH)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("TIER_ASSETS_LLM", "TIER_ASSETS_ENGINE")}
        return {**env, "DAGSTER_HOME": str(self.home), "TIER_ASSETS_DATA_ROOT": str(self.root),
                "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _l2_docs() -> list[dict]:
    rows = SOURCE.read_text(encoding="utf-8").splitlines()
    return [{"doc_id": f"web-{i}", "parent_ids": [f"l1-web-{i}"], "tier": "L2", "domain": DOMAIN, "batch": BATCH,
             "text": json.loads(rows[i])["text"], "score": 4.0 - k, "lang": "en", "source": "rp",
             "source_file": f"rp/{SOURCE.name}", "record_index": i, "signals": {}, "models": {}}
            for k, i in enumerate(LINES)]


def _deployment(base: Path, name: str) -> Deployment:
    """A fresh instance (the batch registered) and data root holding only the L2 partition."""
    home, root = base / name / "dagster_home", base / name / "data"
    home.mkdir(parents=True)
    root.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, [BATCH])
    assert TierStore(root).write(L2, _l2_docs()) == len(LINES)
    return Deployment(home, root, base / f"{name}.log")


class Runs:
    """The CLI runs this test starts, each in its own session; whatever is left is killed at teardown."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, dep: Deployment) -> subprocess.Popen:
        config = {"execution": {"config": {"in_process": {}}},
                  "ops": {"l3_refined": {"config": {"overrides_yaml": yaml.safe_dump(L3_SMALL)}}}}
        cmd = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "tier_assets.definitions",
               "--select", "l3_refined", "--partition", partition_key_string(DOMAIN, BATCH),
               "--config-json", json.dumps(config)]
        with dep.log.open("ab") as log:
            proc = subprocess.Popen(cmd, cwd=REPO, env=dep.env(), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.started.append(proc)
        return proc

    @staticmethod
    def succeeded(proc: subprocess.Popen, dep: Deployment) -> None:
        rc = proc.wait(RUN_TIMEOUT)
        assert rc == 0, f"the run failed (rc {rc}):\n{dep.log.read_text()[-4000:]}"

    def kill_group(self, proc: subprocess.Popen) -> None:
        """SIGKILL the run's process group; wait until every process of it is gone."""
        tree = [proc.pid, *(p.pid for p in psutil.Process(proc.pid).children(recursive=True))]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(60)
        deadline = time.monotonic() + 60
        while alive := [pid for pid in tree if _running(pid)]:
            assert time.monotonic() < deadline, f"still running after SIGKILL: {alive}"
            time.sleep(0.1)

    def cleanup(self) -> None:
        """Stop the groups whose leader is not reaped yet (so the group id cannot belong to anyone else)."""
        for proc in self.started:
            if proc.poll() is None:
                stop_process_group(proc, grace_s=10)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Outside pytest's temp dirs: a concurrent pytest session prunes old ones while this module runs."""
    with tempfile.TemporaryDirectory(prefix="tier-assets-l3-killed-") as tmp:
        yield Path(tmp)


@pytest.fixture
def runs(workdir: Path) -> Iterator[Runs]:
    """Depends on ``workdir`` so that its runs are stopped before their directories are removed."""
    started = Runs()
    try:
        yield started
    finally:
        started.cleanup()


def _paid(path: Path) -> tuple[list[str], int]:
    """(keys of the whole records in the cache file, in order; lines that are not whole records)."""
    if not path.exists():
        return [], 0
    keys, torn = [], 0
    for line in path.read_bytes().split(b"\n"):
        if line.strip():
            try:
                keys.append(json.loads(line)["key"])
            except (ValueError, KeyError):
                torn += 1
    return keys, torn


def _landed(path: Path) -> int:
    """Records finished so far (the text after the last newline may still be being written)."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.name.endswith((".tmp", ".old"))]


def _materialization(dep: Deployment) -> tuple[dict, dict, list[tuple[DagsterRunStatus, int]]]:
    """(metadata, check evaluation) of the partition's latest materialization, and (status, materializations)
    of every run on the instance, that one first."""
    with DagsterInstance.from_config(str(dep.home)) as instance:
        entry = instance.get_latest_materialization_event(AssetKey("l3_refined"))
        assert entry is not None and entry.asset_materialization is not None
        assert entry.asset_materialization.partition == partition_key_string(DOMAIN, BATCH)
        meta = {k: v.value for k, v in entry.asset_materialization.metadata.items()}
        (check,) = [e.dagster_event.event_specific_data for e in
                    instance.all_logs(entry.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)]
        ids = [entry.run_id, *(r.run_id for r in instance.get_runs() if r.run_id != entry.run_id)]
        runs = [(instance.get_run_by_id(i).status,
                 len(instance.all_logs(i, of_type=DagsterEventType.ASSET_MATERIALIZATION))) for i in ids]
        return meta, {"name": check.check_name, "passed": check.passed}, runs


def _tables(root: Path) -> dict[str, object]:
    store = TierStore(root)
    return {kind: store.read(L3, kind) for kind in ("tiers", "rejected")}


def test_l3_run_killed_mid_partition_reruns_to_the_same_partition_without_repaying_llm_calls(workdir, runs):
    reference, killed = _deployment(workdir, "reference"), _deployment(workdir, "killed")

    proc = runs.start(killed)
    deadline = time.monotonic() + RUN_TIMEOUT
    while _landed(killed.cache) < 1:
        assert proc.poll() is None, f"the run ended before any LLM call:\n{killed.log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, "no LLM call landed in the cache"
        time.sleep(0.05)
    runs.kill_group(proc)
    before, torn = _paid(killed.cache)
    assert not TierStore(killed.root).exists(L3) and not TierStore(killed.root).exists(L3, "rejected")
    assert _temp_files(killed.root) == []
    rerun = runs.start(killed)
    # alongside the re-run (they share nothing but the CPUs); started only now, so a first use of the LLM on
    # this machine de-quantizes it once (the killed run did) and both load the converted copy
    uninterrupted = runs.start(reference)

    runs.succeeded(uninterrupted, reference)
    ref_meta, ref_check, ref_runs = _materialization(reference)
    ref_paid, ref_torn = _paid(reference.cache)
    total = len(ref_paid)
    assert ref_runs == [(DagsterRunStatus.SUCCESS, 1)] and ref_torn == 0
    assert ref_meta["llm_cache"]["hits"] == 0 and ref_meta["llm_cache"]["misses"] == total >= 3
    assert ref_meta["records_kept"] >= 1 and ref_meta["records_rejected"] >= 1
    assert len(set(ref_paid)) == total  # every request is distinct, so "paid twice" is visible as a repeat
    # killed after its first paid call and before the last: a write cut by the kill is at most the last line
    assert 1 <= len(before) < total and torn <= 1
    assert before == ref_paid[:len(before)]

    runs.succeeded(rerun, killed)
    meta, check, killed_runs = _materialization(killed)
    after, torn_after = _paid(killed.cache)
    # the re-run succeeded; the killed run materialized nothing (no daemon here to mark it FAILURE)
    assert killed_runs == [(DagsterRunStatus.SUCCESS, 1), (DagsterRunStatus.STARTED, 0)]
    # no call is paid twice: the re-run asked exactly the requests the killed run had not paid, in order
    assert after == ref_paid and torn_after == torn
    assert meta["llm_cache"]["hits"] == len(before)
    assert meta["llm_cache"]["misses"] == total - len(before) == len(after) - len(before)
    assert meta["llm_cache"]["torn_lines"] == torn
    # the budget: the same tokens charged, within the budget, every output on disk, the blocking check passed
    assert check == ref_check == {"name": "budget_held_and_outputs_accounted", "passed": True}
    assert meta["spent_tokens"] == ref_meta["spent_tokens"] and 0 < meta["spent_tokens"] <= meta["budget_tokens"]
    assert meta["budget_tokens"] == L3_SMALL["budget_tokens"]
    store = TierStore(killed.root)
    assert meta["outputs"] == meta["records_kept"] + meta["records_rejected"] == \
        store.count(L3) + store.count(L3, "rejected")
    for name in ("l2_input", "docs_refined", "outputs", "records_kept", "records_rejected", "tokens_out",
                 "budget_exhausted", "docs_not_refined", "rejection_reasons"):
        assert meta[name] == ref_meta[name], name
    # the partition: every column of every kept and rejected record equals the uninterrupted run's
    got, want = _tables(killed.root), _tables(reference.root)
    assert want["tiers"].num_rows > 0
    for kind in ("tiers", "rejected"):
        assert got[kind].to_pylist() == want[kind].to_pylist(), kind
    assert _temp_files(killed.root) == [] and _temp_files(reference.root) == []
