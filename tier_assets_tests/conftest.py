"""Shared fixtures: real data locations and a temporary data root + Dagster instance."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEMO_DATA = REPO / "tier_assets" / "demo_data"


def stop_process_group(proc: subprocess.Popen, grace_s: float = 60) -> None:
    """Stop what a test started with ``start_new_session=True``: SIGTERM to its group, up to ``grace_s`` for the
    leader to exit, then SIGKILL to whatever of the group is left (a Dagster code server can outlive its daemon)."""
    with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture
def dagster_instance(tmp_path: Path):
    """A real, temporary Dagster instance (SQLite storage in a temp DAGSTER_HOME)."""
    from dagster import instance_for_test

    home = tmp_path / "dagster_home"
    home.mkdir()
    with instance_for_test(temp_dir=str(home)) as instance:
        yield instance


@pytest.fixture(scope="session")
def llm():
    """The embedded LLM (SmolLM2-135M); cached per process, so every test module shares one load."""
    from tier_assets.curation.models.llm import load_llm

    return load_llm(None)


@pytest.fixture(scope="session")
def embedder():
    """The default sentence embedder, cached per process like the LLM."""
    from tier_assets.curation.models.embedder import get_embedder

    return get_embedder()
