"""Killed runs under the real daemon (``dagster dev``: webserver + daemon, the project's dagster.yaml with a
short monitoring interval): a run SIGKILLed mid-L1 is marked FAILURE instead of staying STARTED, and a run
launched through the run launcher is retried and reproduces the partition on disk exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from tier_assets.curation.sources import BatchManifest, SourceEntry, now_iso, write_manifest
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets.definitions import build_definitions
from tier_assets.defs.registry import BATCH_PARTITIONS_NAME, partition_key
from tier_assets.defs.run_launcher import worker_health
from tier_assets.runner import run_assets

from .conftest import DEMO_DATA, REPO, stop_process_group
from .test_ui import _free_port, _graphql, _wait

pytestmark = pytest.mark.slow
RP = DEMO_DATA / "en" / "redpajama-c4-sample.jsonl"
PARTITION = partition_key("en", "b1")
L1 = PartitionRef("L1", "en", "b1")
L0 = PartitionRef("L0", "en", "b1")
QUIET_DEFS = """from dagster import Definitions

from tier_assets.definitions import build_definitions



def without_sensors_and_schedules(full: Definitions) -> Definitions:
    return Definitions(assets=full.assets, resources=full.resources)


defs = without_sensors_and_schedules(build_definitions())
"""


def test_worker_health_tells_live_from_dead_processes():
    me = psutil.Process()
    assert worker_health(me.pid, time.time()).status.value == "RUNNING"
    assert worker_health(me.pid, me.create_time() - 60).status.value == "FAILED"  # a recycled pid
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert worker_health(child.pid, time.time()).status.value == "FAILED"


def _tables(store: TierStore) -> dict[tuple[str, str], object]:
    """Kept and rejected records of the L0 and L1 partition."""
    return {(ref.tier, kind): store.read(ref, kind) for ref in (L0, L1) for kind in ("tiers", "rejected")}


@pytest.fixture(scope="module")
def workdir():
    """Outside pytest's temp dirs: a concurrent pytest session prunes old ones while this module runs."""
    with tempfile.TemporaryDirectory(prefix="tier-assets-run-monitoring-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="module")
def daemon(workdir):
    home, root = workdir / "dagster_home", workdir / "data"
    home.mkdir()
    root.mkdir()
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert config["run_monitoring"]["enabled"] and config["run_retries"]["enabled"]
    config["run_monitoring"]["poll_interval_seconds"] = 2  # the project's settings, polled faster
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "DAGSTER_HOME": str(home), "TIER_ASSETS_DATA_ROOT": str(root), "HF_HUB_OFFLINE": "1"}
    instance = DagsterInstance.from_config(str(home))
    write_manifest(root, BatchManifest("b1", now_iso(), [SourceEntry("rp", "en", "jsonl", str(RP), (), "rp/c4")]))
    instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, ["b1"])
    store = TierStore(root)
    assert run_assets(build_definitions(str(root)), instance, ["l0_raw", "l1_filtered"], PARTITION)
    reference = _tables(store)
    # the project's code location without its sensors and schedules: the only runs are the test's own
    (home / "defs.py").write_text(QUIET_DEFS)
    (home / "workspace.yaml").write_text(yaml.safe_dump({"load_from": [{"python_file": {
        "relative_path": "defs.py", "working_directory": str(REPO), "location_name": "tier_assets"}}]}))
    port = _free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w",
         str(home / "workspace.yaml")], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        _wait(lambda: _up(port), 300, "the code location", step=2)
        yield {"port": port, "env": env, "instance": instance, "store": store, "reference": reference}
    finally:
        stop_process_group(proc)
        instance.dispose()


def _up(port: int) -> bool:
    try:
        return bool(_graphql(port, "{ assetNodes { id } }")["assetNodes"])
    except OSError:
        return False


def _status(instance: DagsterInstance, run_id: str) -> DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def _run_worker_pid_mid_l1(instance: DagsterInstance, run_id: str) -> int:
    """The pid that started ``run_id``, once the run is inside the l1_filtered step."""
    def in_l1():
        steps = instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
        return any(e.dagster_event.step_key == "l1_filtered" for e in steps)
    _wait(in_l1, 600, "the run to reach the l1_filtered step", step=0.5)
    (start,) = instance.all_logs(run_id, of_type=DagsterEventType.RUN_START)
    return start.dagster_event.pid


def _kill_tree(pid: int) -> None:
    proc = psutil.Process(pid)
    for p in [*proc.children(recursive=True), proc]:
        p.send_signal(signal.SIGKILL)


def test_a_cli_run_killed_mid_l1_is_marked_failed_by_the_daemon(daemon):
    """`tier-assets backfill` runs in its own process; kill -9 used to leave its run STARTED forever."""
    instance = daemon["instance"]
    known = {r.run_id for r in instance.get_runs()}
    cli = subprocess.Popen([str(Path(sys.executable).parent / "tier-assets"), "backfill", "l1_filtered",
                            "--domain", "en"], cwd=REPO, env=daemon["env"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    run_id = _wait(lambda: next((r.run_id for r in instance.get_runs() if r.run_id not in known), None), 600,
                   "the backfill's run", step=0.5)
    assert instance.get_run_by_id(run_id).tags["dagster/partition"] == PARTITION
    assert _run_worker_pid_mid_l1(instance, run_id) == cli.pid
    cli.send_signal(signal.SIGKILL)
    cli.wait()
    _wait(lambda: _status(instance, run_id) == DagsterRunStatus.FAILURE, 300, "the daemon to fail the run")
    messages = [e.message for e in instance.all_logs(run_id)]
    assert any(f"run worker process {cli.pid} is gone" in m for m in messages), messages[-5:]


LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""


def test_a_launched_run_killed_mid_l1_is_failed_retried_and_reproduces_the_partition(daemon):
    instance, store, port = daemon["instance"], daemon["store"], daemon["port"]
    for tier, kind in daemon["reference"]:  # the retry must write the partition again, not find the old one
        store.partition_path(PartitionRef(tier, "en", "b1"), kind).unlink(missing_ok=True)
    repos = _graphql(port, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }")
    (repo,) = repos["repositoriesOrError"]["nodes"]
    params = {"selector": {"repositoryLocationName": repo["location"]["name"], "repositoryName": repo["name"],
                           "jobName": "__ASSET_JOB", "assetSelection": [{"path": ["l0_raw"]}, {"path": ["l1_filtered"]}]},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": PARTITION}]}}
    launched = _graphql(port, LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    _kill_tree(_run_worker_pid_mid_l1(instance, run_id))
    _wait(lambda: _status(instance, run_id) == DagsterRunStatus.FAILURE, 300, "the killed run to be marked FAILURE")

    def retry():
        runs = instance.get_runs(RunsFilter(tags={"dagster/parent_run_id": run_id}))
        return runs[0] if runs else None
    child = _wait(retry, 300, "the daemon to launch a retry", step=2)
    assert child.tags["dagster/retry_number"] == "1"
    _wait(lambda: _status(instance, child.run_id) in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE), 900,
          "the retry to finish", step=2)
    assert _status(instance, child.run_id) == DagsterRunStatus.SUCCESS
    again = _tables(store)
    assert again[("L1", "tiers")].num_rows > 0
    for key, table in daemon["reference"].items():
        assert again[key].equals(table), key
