"""The Dagster UI for real: `dagster dev` (webserver + daemon) on 127.0.0.1, queried over GraphQL,
and the daemon's sensors promoting a file dropped into the inbox from L0 all the way to L4.

The LLM tiers run with small recipes (``TIER_ASSETS_L2/L3/L4_RECIPE``), as a deployment would
set them, so the chain finishes in a few minutes on two CPU cores."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from tier_assets.curation.sources import BatchManifest, SourceEntry, now_iso, write_manifest
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets.definitions import build_definitions
from tier_assets.defs.l0 import l0_raw
from tier_assets.defs.l1 import l1_filtered
from tier_assets.defs.registry import BATCH_PARTITIONS_NAME, partition_key

from .conftest import DEMO_DATA, REPO, stop_process_group

pytestmark = pytest.mark.slow
RP = DEMO_DATA / "en" / "redpajama-c4-sample.jsonl"
SMALL_RECIPES = {
    "l2": "defaults: {seeds: 8, max_references: 4, references: [reference_data/en-reference.jsonl.gz]}\n",
    "l3": "defaults: {budget_tokens: 1500, max_new_tokens: 64, max_docs: 1}\n",
    "l4": "defaults: {budget_tokens: 1200, max_new_tokens: 64, max_llm_docs: 1}\n",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        out = json.loads(resp.read())
    assert "errors" not in out, out.get("errors")
    return out["data"]


def _wait(predicate, timeout: float, what: str, step: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    root = tmp_path_factory.mktemp("data")
    recipes = tmp_path_factory.mktemp("recipes")
    for name, text in SMALL_RECIPES.items():
        (recipes / f"{name}.yaml").write_text(text)
    env = {**os.environ, "DAGSTER_HOME": str(home), "TIER_ASSETS_DATA_ROOT": str(root), "HF_HUB_OFFLINE": "1",
           **{f"TIER_ASSETS_{name.upper()}_RECIPE": str(recipes / f"{name}.yaml") for name in SMALL_RECIPES}}
    # one materialized partition before the UI starts
    instance = DagsterInstance.from_config(str(home))
    write_manifest(root, BatchManifest("b1", now_iso(), [SourceEntry("rp", "en", "jsonl", str(RP), (), "rp/c4")]))
    instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, ["b1"])
    defs = build_definitions(str(root))
    assert materialize([l0_raw, l1_filtered], instance=instance, partition_key=partition_key("en", "b1"),
                       resources=defs.resources).success
    port = _free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w",
         "workspace.yaml"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def up():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        _wait(up, 120, "the webserver")
        _wait(lambda: _graphql(port, "{ assetNodes { id } }")["assetNodes"], 120, "the code location")
        yield {"port": port, "root": root, "home": home}
    finally:
        stop_process_group(proc, grace_s=30)


def test_graphql_shows_assets_partitions_materializations_checks_and_lineage(dagster_dev):
    port = dagster_dev["port"]
    nodes = _graphql(port, """{ assetNodes { assetKey { path } dependencyKeys { path } isPartitioned
        partitionKeysByDimension { name partitionKeys } } }""")["assetNodes"]
    by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    assert {"l0_raw", "l1_filtered", "tier_stats"} <= set(by_key)
    assert [d["path"] for d in by_key["l1_filtered"]["dependencyKeys"]] == [["l0_raw"]]  # lineage
    dims = {d["name"]: d["partitionKeys"] for d in by_key["l0_raw"]["partitionKeysByDimension"]}
    assert dims["domain"] == ["en", "zh", "math", "code"] and dims["batch"] == ["b1"]

    data = _graphql(port, """{ assetOrError(assetKey: {path: ["l0_raw"]}) { ... on Asset {
        assetMaterializations(limit: 5) { partition metadataEntries { label
            ... on IntMetadataEntry { intValue } } } } } }""")
    (mat,) = data["assetOrError"]["assetMaterializations"]
    assert mat["partition"] == "b1|en"
    meta = {e["label"]: e.get("intValue") for e in mat["metadataEntries"]}
    assert meta["records_read"] == 10 and meta["records_kept"] == 10

    data = _graphql(port, """{ assetNodes(assetKeys: [{path: ["l1_filtered"]}]) { assetChecksOrError {
        ... on AssetChecks { checks { name blocking executionForLatestMaterialization { status } } } } } }""")
    (check,) = data["assetNodes"][0]["assetChecksOrError"]["checks"]
    assert check["name"] == "records_accounted" and check["blocking"]
    assert check["executionForLatestMaterialization"]["status"] == "SUCCEEDED"


@pytest.mark.heavy
@pytest.mark.timeout(1800)
def test_daemon_sensors_promote_an_inbox_file_from_l0_to_l4(dagster_dev):
    root, port = dagster_dev["root"], dagster_dev["port"]
    inbox = root / "inbox" / "en"
    inbox.mkdir(parents=True)
    shutil.copy(DEMO_DATA / "en" / "redpajama-cc-2023-06-sample.jsonl", inbox / "drop.jsonl.tmp")
    (inbox / "drop.jsonl.tmp").rename(inbox / "drop.jsonl")  # appear atomically
    store = TierStore(root)

    def new_batch_at(tier):
        refs = [r for r in store.partitions(tier) if r.batch.startswith("inbox-")]
        return refs[0] if refs else None

    ref = _wait(lambda: new_batch_at("L1"), 240, "the sensors to ingest the inbox file and promote it to L1", step=3)
    assert store.count(PartitionRef("L0", "en", ref.batch)) == 10
    assert store.count(ref) + store.count(ref, "rejected") == 10

    # L1 -> (the en classifier, trained once) -> L2 -> L3 -> L4 -> the index, all requested by sensors
    _wait(lambda: new_batch_at("L4"), 900, "the sensors to promote the inbox batch to L4", step=5)
    batch = ref.batch
    assert store.count(PartitionRef("L2", "en", batch)) + store.count(PartitionRef("L2", "en", batch), "rejected") \
        == store.count(ref)

    def checks_of(asset):
        data = _graphql(port, """query($p: [String!]!) { assetNodes(assetKeys: [{path: $p}]) { assetChecksOrError {
            ... on AssetChecks { checks { name blocking executionForLatestMaterialization { status } } } } } }""",
                        {"p": [asset]})
        return {c["name"]: c["executionForLatestMaterialization"] for c in
                data["assetNodes"][0]["assetChecksOrError"]["checks"]}

    def index_has_batch():
        data = _graphql(port, """{ assetOrError(assetKey: {path: ["l4_index"]}) { ... on Asset {
            assetMaterializations(limit: 1) { runId } } } }""")
        mats = data["assetOrError"]["assetMaterializations"]
        check = checks_of("l4_organized")["evidence_resolves"]
        # the L4 file lands before its run records the check: wait for a final status, not IN_PROGRESS
        return mats and check is not None and check["status"] != "IN_PROGRESS"

    _wait(index_has_batch, 300, "the L4 index refresh", step=5)
    assert checks_of("l4_organized")["evidence_resolves"]["status"] == "SUCCEEDED"
    assert checks_of("l2_selected")["records_accounted"]["status"] == "SUCCEEDED"
    classifier = _graphql(port, """{ assetOrError(assetKey: {path: ["l2_classifier"]}) { ... on Asset {
        assetMaterializations(limit: 5) { partition } } } }""")["assetOrError"]["assetMaterializations"]
    assert [m["partition"] for m in classifier] == ["en"]  # trained once, for both batches
