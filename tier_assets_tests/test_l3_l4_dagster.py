"""L3 and L4 through real Dagster with the embedded LLM: budgets, blocking checks, the index and `ask`.

One module-scoped chain L0 -> L2 (a handful of seeds) feeds every test here.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from dagster import instance_for_test, materialize

from tier_assets.cli import main
from tier_assets.curation.l4.settings import load_l4_settings
from tier_assets.curation.l4.tier import evidence_check
from tier_assets.curation.sources import BatchManifest, SourceEntry, now_iso, write_manifest
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets.definitions import build_definitions
from tier_assets.defs.registry import BATCH_PARTITIONS_NAME, partition_key
from tier_assets.runner import run_assets

from .conftest import DEMO_DATA

L3_SMALL = "budget_tokens: 2500\nmax_new_tokens: 96\nmax_docs: 2"
L4_SMALL = "budget_tokens: 1500\nmax_new_tokens: 64\nmax_llm_docs: 1"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """An en batch materialized L0 -> L2 through Dagster on a temporary instance and data root."""
    home = tmp_path_factory.mktemp("home")
    root = tmp_path_factory.mktemp("data")
    entries = [SourceEntry("rp", "en", "jsonl", str(DEMO_DATA / "en" / name), (), f"rp/{name}")
               for name in ("redpajama-c4-sample.jsonl", "redpajama-cc-2023-06-sample.jsonl")]
    write_manifest(root, BatchManifest("b1", now_iso(), entries))
    with instance_for_test(temp_dir=str(home)) as instance:
        instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, ["b1"])
        defs = build_definitions(str(root))
        key = partition_key("en", "b1")
        assert run_assets(defs, instance, ["l0_raw", "l1_filtered"], key)
        assert run_assets(defs, instance, ["l2_classifier"], "en", {"l2_classifier": "seeds: 8\nmax_references: 4\nmax_chars: 300"})
        assert run_assets(defs, instance, ["l2_selected"], key)
        yield {"instance": instance, "defs": defs, "root": root, "store": TierStore(root), "key": key}


@pytest.fixture(scope="module")
def upper(chain):
    """L3, L4 and the L4 index materialized once over the chain (results of each run)."""
    runs = {"l3_refined": _run(chain, "l3_refined", L3_SMALL), "l4_organized": _run(chain, "l4_organized", L4_SMALL),
            "l4_index": _run(chain, "l4_index", overrides=None, partitioned=False)}
    return runs


def _run(chain, asset: str, overrides: str | None = "", partitioned: bool = True):
    config = {"ops": {asset: {"config": {"overrides_yaml": overrides}}}} if overrides is not None else None
    return materialize(list(chain["defs"].assets), instance=chain["instance"],
                       partition_key=chain["key"] if partitioned else None, resources=chain["defs"].resources,
                       selection=[asset], raise_on_error=False, run_config=config)


def test_l3_asset_holds_the_budget_and_accounts_for_outputs(chain, upper):
    store = chain["store"]
    result = upper["l3_refined"]
    assert result.success
    meta = result.asset_materializations_for_node("l3_refined")[0].metadata
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.check_name == "budget_held_and_outputs_accounted"
    assert 0 < meta["spent_tokens"].value <= 2500
    ref = PartitionRef("L3", "en", "b1")
    kept, rejected = store.count(ref), store.count(ref, "rejected")
    assert kept + rejected == meta["outputs"].value > 0
    assert meta["docs_refined"].value <= 2
    l2_ids = set(store.read(PartitionRef("L2", "en", "b1"), columns=["doc_id"])["doc_id"].to_pylist())
    for kind in ("tiers", "rejected"):
        for rec in store.read_docs(ref, kind):
            assert rec["parent_ids"][0] in l2_ids  # every output points at its L2 source
            assert rec["models"]["l3"]["llm"].startswith("HuggingFaceTB/SmolLM2-135M")
            l3 = rec["signals"]["l3"]
            assert l3["prompt_version"] and l3["tokens_in"] > 0
    for rec in store.read_docs(ref, "rejected"):
        assert rec["stage"] and rec["reason"]  # failures keep the output and say why

    bad = _run(chain, "l3_refined", "budget_tokens: -5")
    assert not bad.success
    assert "budget_tokens" in str(bad.get_step_failure_events()[0].step_failure_data.error)


def test_l4_asset_evidence_check_index_and_ask(chain, upper, capsys):
    store = chain["store"]
    result = upper["l4_organized"]
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"evidence_resolves": True, "conflicts_linked": True}
    meta = result.asset_materializations_for_node("l4_organized")[0].metadata
    ref = PartitionRef("L4", "en", "b1")
    assert store.count(ref) == meta["records_kept"].value > 0
    assert meta["spent_tokens"].value <= 1500
    report = evidence_check(store, "en", "b1")
    assert report.items == store.count(ref) and report.pointers >= report.items and report.problems == []

    index = upper["l4_index"]
    assert index.success
    assert index.asset_materializations_for_node("l4_index")[0].metadata["items"].value == store.count(ref)

    # ask with an item's own words: it comes back first, with its evidence and lineage down to the L0 file
    item = store.read_docs(ref)[0]
    assert main(["--data-root", str(chain["root"]), "ask", item["text"], "-k", "3", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)[0]
    assert top["doc_id"] == item["doc_id"] and top["score"] > 0.99
    evidence = top["evidence"][0]
    assert evidence["text"] and evidence["end"] > evidence["start"]
    lineage = evidence["lineage"]
    assert lineage[0]["doc_id"] == evidence["doc_id"] and lineage[-1]["tier"] == "L0"
    assert lineage[-1]["source_file"].startswith("rp/redpajama-") and lineage[-1]["record_index"] is not None
    assert main(["--data-root", str(chain["root"]), "ask", item["text"], "-k", "1"]) == 0
    text = capsys.readouterr().out
    assert item["text"][:40] in text and "evidence" in text and " L0 " in text
    # nothing close enough: no misleading evidence, and the user is told why
    assert main(["--data-root", str(chain["root"]), "ask", "What is the boiling point of liquid nitrogen in kelvin?"]) == 1
    assert "no L4 item is within 0.5" in capsys.readouterr().err
    assert main(["--data-root", str(chain["root"]), "ask", item["text"], "--min-score", "1.01"]) == 1
    assert "no L4 item is within 1.01" in capsys.readouterr().err
    assert main(["--data-root", str(chain["root"]), "ask", item["text"], "--min-score", "1.01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_lineage_command_traces_down_to_l0_and_up_to_l4(chain, upper, capsys):
    store, root = chain["store"], str(chain["root"])
    item = store.read_docs(PartitionRef("L4", "en", "b1"))[0]
    assert main(["--data-root", root, "lineage", item["doc_id"], "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    down = sorted((r for r in rows if r["direction"] == "down"), key=lambda r: r["depth"])
    assert down[0]["doc_id"] == item["doc_id"] and down[0]["tier"] == "L4"
    assert [r["tier"] for r in down][-2:] == ["L1", "L0"] and down[-1]["source_file"].startswith("rp/redpajama-")
    for row in down[1:]:  # each ancestor is a parent of a record one level above it
        assert any(row["doc_id"] in r["parent_ids"] for r in down if r["depth"] == row["depth"] - 1)
    # from the L0 source record up: its L1 and L2 descendants and the L4 item itself
    source = down[-1]["doc_id"]
    assert main(["--data-root", root, "lineage", source, "--json"]) == 0
    up = [r for r in json.loads(capsys.readouterr().out) if r["direction"] == "up"]
    assert {"L1", "L2", "L4"} <= {r["tier"] for r in up} and item["doc_id"] in {r["doc_id"] for r in up}
    assert main(["--data-root", root, "lineage", source]) == 0
    assert "ancestors (down to the L0 source)" in capsys.readouterr().out
    assert main(["--data-root", root, "lineage", "no-such-doc"]) == 2
    assert "unknown doc_id 'no-such-doc'" in capsys.readouterr().err


def test_evidence_check_catches_a_changed_source(chain, upper):
    store = chain["store"]
    item = store.read_docs(PartitionRef("L4", "en", "b1"))[0]
    pointer = item["signals"]["l4"]["evidence"][0]
    tier = next(t for t in ("L2", "L3") if pointer["doc_id"] in
                store.read(PartitionRef(t, "en", "b1"), columns=["doc_id"])["doc_id"].to_pylist())
    path = store.partition_path(PartitionRef(tier, "en", "b1"))
    original = pq.read_table(path)
    rows = original.to_pylist()
    for row in rows:
        if row["doc_id"] == pointer["doc_id"]:
            row["text"] = row["text"][: pointer["start"]] + "X" + row["text"][pointer["start"] + 1:]
    try:
        pq.write_table(original.from_pylist(rows, schema=original.schema), path)
        problems = evidence_check(store, "en", "b1").problems
        assert problems and pointer["doc_id"] in problems[0] and "not the cited" in problems[0]
    finally:
        pq.write_table(original, path)
    assert evidence_check(store, "en", "b1").problems == []


def test_l4_config_validation():
    with pytest.raises(ValueError, match="unknown setting"):
        load_l4_settings("en", {"budget": 5})
    with pytest.raises(ValueError, match="merge_threshold"):
        load_l4_settings("en", {"merge_threshold": 3})
    assert load_l4_settings("zh").budget_tokens == 10000


def test_export_assets_write_shards_and_manifests(chain, upper):
    store = chain["store"]
    for stage, budget in (("pretrain", 3000), ("rag", 100_000)):
        result = materialize(list(chain["defs"].assets), instance=chain["instance"],
                             resources=chain["defs"].resources, selection=[f"export_{stage}"],
                             run_config={"ops": {f"export_{stage}": {"config": {"token_budget": budget}}}})
        assert result.success
        meta = result.asset_materializations_for_node(f"export_{stage}")[0].metadata
        manifest = json.loads((store.root / "exports" / stage / "manifest.json").read_text())
        assert manifest["delivered_tokens"] == meta["delivered_tokens"].value <= budget
        assert manifest["delivered_docs"] == meta["delivered_docs"].value > 0
        assert sum(s["docs"] for s in manifest["shards"]) == manifest["delivered_docs"]
        assert all((store.root / "exports" / stage / s["path"]).exists() for s in manifest["shards"])
        if stage == "pretrain":
            assert set(manifest["tiers"]) == {"L1", "L2"}
            assert "l1.recipe" in manifest["versions"] and "l2.classifier_version" in manifest["versions"]
        else:  # RAG is the L4 items plus the index they belong to
            assert manifest["delivered_docs"] == store.count(PartitionRef("L4", "en", "b1"))
            assert manifest["index"]["exists"] and manifest["index"]["count"] == manifest["delivered_docs"]


def test_empty_upstream_gives_empty_valid_partitions(chain, upper):
    """Runs last: it empties L2 of the module's chain."""
    store = chain["store"]
    # nothing selected into L2 (threshold above every score): L3 and L4 are empty and valid
    assert _run(chain, "l2_selected", "{threshold: 5.0, top_fraction: null}").success
    assert store.count(PartitionRef("L2", "en", "b1")) == 0
    l3 = _run(chain, "l3_refined", L3_SMALL)
    assert l3.success and l3.get_asset_check_evaluations()[0].passed
    l4 = _run(chain, "l4_organized", L4_SMALL)
    assert l4.success and l4.get_asset_check_evaluations()[0].passed
    for tier in ("L3", "L4"):
        ref = PartitionRef(tier, "en", "b1")
        assert store.exists(ref) and store.count(ref) == 0
