# ruff: noqa: E402  (Ray is optional: the module is skipped before its Ray imports when it is absent)
"""`TIER_ASSETS_ENGINE=ray RAY_ADDRESS=... tier-assets demo` against a Ray head of its own process tree.

The head is `ray start --head --block` (2 CPUs, token authentication on, with a token of this
test's: ``RAY_AUTH_TOKEN``, so nothing under ``~/.ray`` is read or written) in a temp dir of its
own; it is stopped by signalling that one process, and any process still naming the temp dir is
killed by PID. The demo runs through the CLI in a subprocess (the run is the Ray driver, as in a
deployment) and its partitions are compared with the same CLI in local mode.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[cluster]'")

from tier_assets.curation.l2.train import current_version
from tier_assets.curation.storage import PartitionRef, TierStore

BIN = Path(sys.executable).parent
BATCH = "demo-0001"
pytestmark = pytest.mark.slow  # starts a Ray head, runs the demo twice


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_naming(path: str) -> list[int]:
    """Processes whose command line names ``path`` (a temp dir only this test's head uses)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and path.encode() in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.fixture(scope="module")
def ray_head() -> Iterator[dict[str, str]]:
    """A Ray head (2 CPUs) on 127.0.0.1; yields the environment a driver needs to join it."""
    temp = tempfile.mkdtemp(prefix="rayhead-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_ADDRESS", None)
    head = subprocess.Popen([str(BIN / "ray"), "start", "--head", "--block", "--num-cpus", "2", "--port", str(port),
                             "--node-ip-address", "127.0.0.1", "--temp-dir", temp, "--include-dashboard=false",
                             "--disable-usage-stats"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the Ray head did not start (exit {head.poll()})") from None
                time.sleep(0.5)
        yield {**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}
    finally:
        head.send_signal(signal.SIGINT)  # `ray start --block` stops the processes it started on the way out
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        for pid in _pids_naming(temp):  # anything of this head still alive (only it names the temp dir)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def demo(tmp: Path, env: dict[str, str], engine: str, through: str) -> TierStore:
    """`tier-assets demo --domain code --through TIER` into a data root and Dagster instance of its own."""
    root, home = tmp / engine / "data", tmp / engine / "dagster"
    home.mkdir(parents=True)
    run_env = {**env, "TIER_ASSETS_ENGINE": engine, "DAGSTER_HOME": str(home), "HF_HUB_OFFLINE": "1",
               "OMP_NUM_THREADS": "1"}
    if engine == "local":
        run_env.pop("RAY_ADDRESS", None)
    done = subprocess.run([str(BIN / "tier-assets"), "--data-root", str(root), "demo", "--domain", "code",
                           "--through", through], env=run_env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return TierStore(root)


def decisions(store: TierStore, tier: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Kept ids, and (id, stage, reason) of each rejected record, sorted."""
    ref = PartitionRef(tier, "code", BATCH)
    return (sorted(d["doc_id"] for d in store.read_docs(ref)),
            sorted((d["doc_id"], d["stage"], d["reason"]) for d in store.read_docs(ref, "rejected")))


def content(store: TierStore, tier: str) -> dict[str, list[str]]:
    ref = PartitionRef(tier, "code", BATCH)
    return {kind: sorted(json.dumps(d, sort_keys=True, default=str) for d in store.read_docs(ref, kind))
            for kind in ("tiers", "rejected")}


def ran_on_ray(store: TierStore) -> bool:
    """The demo's Dagster log has the Ray runner's progress lines (documents through stages on workers)."""
    return any("worker(s) per operator" in log.read_text() for log in (store.root / "logs").glob("demo-*.log"))


def test_demo_code_l0_to_l2_on_a_ray_head_equals_local(ray_head: dict[str, str], tmp_path: Path) -> None:
    """Both runs share one LLM cache (``TIER_ASSETS_LLM_CACHE``): the seeds are labelled once, by the local run,
    and the run on Ray trains the same classifier from the cached answers; then only the engine differs."""
    shared = {**ray_head, "TIER_ASSETS_LLM_CACHE": str(tmp_path / "llm-cache")}
    annotations = tmp_path / "llm-cache" / "l2" / "code" / "annotations.jsonl"
    local = demo(tmp_path, shared, "local", "L2")
    paid = annotations.read_text().count("\n")
    assert paid >= 4
    on_ray = demo(tmp_path, shared, "ray", "L2")
    assert annotations.read_text().count("\n") == paid  # nothing asked again
    assert current_version(on_ray.root, "code") == current_version(local.root, "code") is not None
    assert ran_on_ray(on_ray) and not ran_on_ray(local)
    kept, rejected = decisions(local, "L1")
    assert kept and rejected
    assert decisions(on_ray, "L1") == (kept, rejected)
    assert content(on_ray, "L1") == content(local, "L1")  # every field, signals included
    kept, rejected = decisions(local, "L2")
    assert kept and rejected
    assert decisions(on_ray, "L2") == (kept, rejected)
    ref = PartitionRef("L2", "code", BATCH)
    scores = [{d["doc_id"]: d["score"] for d in s.read_docs(ref) + s.read_docs(ref, "rejected")} for s in (local, on_ray)]
    assert scores[0].keys() == scores[1].keys()
    assert max(abs(scores[1][i] - s) for i, s in scores[0].items()) < 1e-6
    assert not on_ray.exists(PartitionRef("L3", "code", BATCH))  # --through L2 stops there
