"""Registering a batch from a source registry: a missing source is refused before the batch exists, and a
batch whose L0 never succeeded can be registered again from a corrected registry; one that holds data cannot."""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterInstance

from tier_assets.curation.sources import read_manifest
from tier_assets.definitions import build_definitions
from tier_assets.defs.registry import partition_key
from tier_assets.runner import run_assets

from . import test_cli
from .test_cli import assert_one_line_error, cli, math_registry, unreadable_registry, write_registry

env = test_cli.env  # a temporary DAGSTER_HOME and data roots, as the CLI tests use


def test_a_source_path_that_does_not_exist_is_refused_and_no_batch_is_made(env, capsys) -> None:
    missing = env["tmp"] / "does-not-exist.jsonl"
    registry = write_registry(env["tmp"] / "missing.yaml", "gone", "math", missing, "jsonl")
    code, _, err = cli(["add-batch", "b1", "--registry", str(registry), "--data-root", str(env["root"])], capsys)
    assert_one_line_error(code, err, "cannot register batch 'b1'", f"source 'gone': {missing} does not exist")
    assert not (env["root"] / "batches" / "b1.json").exists()
    assert not DagsterInstance.get().has_dynamic_partition("batch", "b1")
    code, _, err = cli(["demo", "--registry", str(registry), "--data-root", str(env["root"])], capsys)
    assert_one_line_error(code, err, "cannot register batch 'demo-0001'", "does not exist")
    assert not (env["root"] / "logs").exists()  # a usage error leaves no log file behind


def test_a_batch_without_l0_data_is_registered_again_and_one_with_data_is_refused(env, capsys) -> None:
    root = env["root"]
    bad, good = unreadable_registry(env["tmp"]), math_registry(env["tmp"], "good")
    other = math_registry(env["tmp"], "other", 3)
    assert cli(["add-batch", "b1", "--registry", str(bad), "--data-root", str(root)], capsys)[0] == 0
    instance = DagsterInstance.get()
    defs = build_definitions(str(root))
    assert not run_assets(defs, instance, ["l0_raw"], partition_key("math", "b1"), raise_on_error=False)  # a real failure
    capsys.readouterr()

    # the registry, corrected: nothing of b1 was made, so b1 now names the good source
    code, out, err = cli(["add-batch", "b1", "--registry", str(good), "--data-root", str(root)], capsys)
    assert code == 0 and "batch 'b1' had no L0 data yet: registered again from" in err
    assert [Path(e.path).name for e in read_manifest(root, "b1").entries] == ["good.jsonl"]
    # the same registry again changes nothing and says nothing
    code, _, err = cli(["add-batch", "b1", "--registry", str(good), "--data-root", str(root)], capsys)
    assert code == 0 and err == ""
    assert run_assets(defs, instance, ["l0_raw"], partition_key("math", "b1"))
    capsys.readouterr()

    # b1 holds data now: other sources are refused, naming the way out, and the manifest stays
    code, _, err = cli(["add-batch", "b1", "--registry", str(other), "--data-root", str(root)], capsys)
    assert_one_line_error(code, err, "batch 'b1' is already registered", "L0 holds its math data",
                          "register the new sources as a new batch (--batch NAME)")
    assert [Path(e.path).name for e in read_manifest(root, "b1").entries] == ["good.jsonl"]


def test_without_a_registry_an_existing_batch_is_reused(env, capsys) -> None:
    registry = math_registry(env["tmp"], "good")
    assert cli(["add-batch", "b1", "--registry", str(registry), "--data-root", str(env["root"])], capsys)[0] == 0
    before = (env["root"] / "batches" / "b1.json").read_text()
    code, out, err = cli(["add-batch", "b1", "--data-root", str(env["root"])], capsys)  # the default registry
    assert code == 0 and err == "" and '"domains": ["math"]' in out
    assert (env["root"] / "batches" / "b1.json").read_text() == before
