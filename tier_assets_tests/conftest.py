"""Shared fixtures: real data locations and a temporary data root + Dagster instance."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEMO_DATA = REPO / "tier_assets" / "demo_data"


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
