"""User mistakes the CLI meets: each is one line `tier-assets CMD: error: ...` on stderr, exit 2, no traceback.

Most cases call ``main([...])`` in-process with a temporary DAGSTER_HOME and data root;
the ones about import-time failures and a closed stdout run the installed entry point,
since only a real process shows what a shell user sees. None of them loads a model.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance

from tier_assets.defs.registry import BATCH_PARTITIONS_NAME

from .test_cli import assert_one_line_error, cli, unreadable_registry
from .test_report_exports import build_store, read_export

ENTRY_POINT = Path(sys.executable).parent / "tier-assets"
BAD_LLM = ['{"backend": "openai",', '{"modle": "x"}', '{"backend": "gpt"}']


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary DAGSTER_HOME; the default data root points at a folder that must stay absent."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("TIER_ASSETS_DATA_ROOT", str(tmp_path / "default_root"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TIER_ASSETS_LLM", raising=False)
    return home


def one_line(code: int, err: str, prefix: str, *needles: str) -> str:
    """The single stderr line of a usage error (``assert_one_line_error``), also checked for its prefix."""
    assert_one_line_error(code, err, *needles)
    line = next(line for line in err.splitlines() if line.strip())
    assert line.startswith(prefix), line
    return line


def entry_point(argv: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(ENTRY_POINT), *argv], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300, **kwargs)


# --- item 1: a malformed $TIER_ASSETS_LLM ------------------------------------------------------------------

@pytest.mark.parametrize("command", [["demo"], ["backfill", "l1_filtered"], ["add-batch", "b1"]])
@pytest.mark.parametrize(("value", "needle"), list(zip(BAD_LLM, ["is not JSON", "unknown key(s) ['modle']",
                                                           "unknown LLM backend 'gpt'"], strict=True)))
def test_bad_llm_env_is_one_line_naming_the_variable(command, value, needle, home, tmp_path, capsys,
                                                     monkeypatch) -> None:
    monkeypatch.setenv("TIER_ASSETS_LLM", value)
    root = tmp_path / "data"
    code, _, err = cli(["--data-root", str(root), *command], capsys)
    one_line(code, err, f"tier-assets {command[0]}: error: TIER_ASSETS_LLM: ", needle, "unset it")
    assert not root.exists()  # no log file, no batch written


def test_bad_llm_env_from_the_shell_has_no_import_traceback(home, tmp_path) -> None:
    proc = entry_point(["--data-root", str(tmp_path / "data"), "backfill", "l1_filtered"],
                       {"DAGSTER_HOME": str(home), "TIER_ASSETS_LLM": BAD_LLM[0], "HF_HUB_OFFLINE": "1"})
    one_line(proc.returncode, proc.stderr, "tier-assets backfill: error: TIER_ASSETS_LLM: LLM config is not JSON")


# --- item 2: backfill against a data root that lacks the instance's batch ----------------------------------

def test_backfill_of_a_batch_without_manifest_is_one_line_and_writes_no_log(home, tmp_path, capsys) -> None:
    DagsterInstance.get().add_dynamic_partitions(BATCH_PARTITIONS_NAME, ["demo-0001"])
    root = tmp_path / "elsewhere"
    code, _, err = cli(["--data-root", str(root), "backfill", "l1_filtered"], capsys)
    one_line(code, err, "tier-assets backfill: error: batch 'demo-0001' has no manifest at",
             str(root), "give the --data-root it was added under")
    assert not (root / "logs").exists()


def test_backfill_usage_errors_leave_no_log_file(home, tmp_path, capsys) -> None:
    DagsterInstance.get().add_dynamic_partitions(BATCH_PARTITIONS_NAME, ["b1"])
    root = tmp_path / "data"
    code, _, err = cli(["--data-root", str(root), "backfill", "l1_filtered", "--batch", "nope"], capsys)
    one_line(code, err, "tier-assets backfill: error: unknown batch(es) nope; known: b1")
    code, _, err = cli(["--data-root", str(root), "backfill", "no_such_asset"], capsys)
    one_line(code, err, "tier-assets backfill: error: unknown asset 'no_such_asset'")
    assert not (root / "logs").exists()


# --- item 3: export / report --out to a place that cannot be written -------------------------------------

@pytest.fixture
def tiers(tmp_path: Path) -> Path:
    """A data root with L1 and L2 partitions (the export tests' store), enough for export and report."""
    root = tmp_path / "data"
    build_store(root)
    return root


def test_out_under_a_regular_file_is_one_line(home, tiers, tmp_path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    code, _, err = cli(["--data-root", str(tiers), "export", "pretrain", "--out", str(blocker / "x")], capsys)
    one_line(code, err, f"tier-assets export: error: --out {blocker / 'x'}: cannot create the folder (",
             "Not a directory")
    code, _, err = cli(["--data-root", str(tiers), "report", "--out", str(blocker / "r" / "report.html")],
                           capsys)
    one_line(code, err, f"tier-assets report: error: --out {blocker / 'r'}: cannot create the folder (",
             "Not a directory")
    assert blocker.read_text() == "not a folder\n"


def test_report_out_that_is_a_folder_is_one_line(home, tiers, tmp_path, capsys) -> None:
    code, _, err = cli(["--data-root", str(tiers), "report", "--out", str(tmp_path)], capsys)
    one_line(code, err, f"tier-assets report: error: --out {tmp_path}: is a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0o555 folder anyway")
def test_out_in_a_read_only_folder_is_one_line(home, tiers, tmp_path, capsys) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, _, err = cli(["--data-root", str(tiers), "export", "pretrain", "--out", str(locked)], capsys)
        one_line(code, err, f"tier-assets export: error: --out {locked}: the folder is not writable")
        code, _, err = cli(["--data-root", str(tiers), "export", "pretrain", "--out", str(locked / "sub")],
                               capsys)
        one_line(code, err, f"tier-assets export: error: --out {locked / 'sub'}: cannot create the folder (",
                 "Permission denied")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


# --- item 4: serve-llm on a port that is taken: fails before loading the model -----------------------------

def test_serve_llm_on_a_bound_port_is_one_line(home, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = cli(["serve-llm", "--port", str(port)], capsys)
    one_line(code, err, f"tier-assets serve-llm: error: cannot listen on 127.0.0.1:{port}: ",
             "Address already in use", "give another --port")


# --- item 5: evaluate-l2 on a malformed labelled file ------------------------------------------------------

@pytest.mark.parametrize(("lines", "needle"), [
    ('{"text": "a", "label": 1}\n{"text": "b"}\n', ":2: 'label' must be 0 or 1, got None"),
    ('{"text": "a", "label": 1}\n\nnot json\n', ":3: not JSON (Expecting value"),
    ('{"label": 0}\n', ":1: needs a string 'text'"),
    ('{"text": "a", "label": 2}\n', ":1: 'label' must be 0 or 1, got 2"),
])
def test_evaluate_l2_names_the_bad_line(lines, needle, home, tmp_path, capsys) -> None:
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text(lines)
    classifier = tmp_path / "clf"  # never loaded: the file is read first
    classifier.mkdir()
    code, _, err = cli(["evaluate-l2", str(labelled), "--classifier", str(classifier)], capsys)
    one_line(code, err, f"tier-assets evaluate-l2: error: {labelled}{needle}")


# --- item 6: stdout closed by the reader (`tier-assets stats | head`) ------------------------------------

def test_closed_stdout_ends_quietly(home, tiers) -> None:
    proc = subprocess.Popen([str(ENTRY_POINT), "--data-root", str(tiers), "stats"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "DAGSTER_HOME": str(home)})
    proc.stdout.close()  # no reader left before the command writes its first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err
    assert err == ""


# --- item 7: messages that blamed the wrong thing; hints only after success -------------------------------

def test_misspelled_option_is_named_not_its_value(home, tiers, capsys) -> None:
    code, _, err = cli(["--data-root", str(tiers), "stats", "--domian", "en"], capsys)
    line = one_line(code, err, "tier-assets", "unrecognized arguments: --domian")
    assert "unknown query" not in line
    code, _, err = cli(["--data-root", str(tiers), "stats", "funnel", "bogus"], capsys)
    one_line(code, err, "tier-assets stats: error: unknown query 'bogus'; known: tier_summary")


@pytest.mark.parametrize("command", ["lineage", "dup-cluster"])
def test_lookup_on_an_empty_root_says_the_root_is_empty(command, home, tmp_path, capsys) -> None:
    root = tmp_path / "nonexistent"
    code, _, err = cli([command, "abc", "--data-root", str(root)], capsys)
    line = one_line(code, err, f"tier-assets {command}: error: no tier data under {root} yet")
    assert "abc" not in line


def test_failed_backfill_prints_no_next_steps(home, tmp_path, capsys) -> None:
    root = tmp_path / "data"
    registry = unreadable_registry(tmp_path)
    assert cli(["add-batch", "b1", "--registry", str(registry), "--data-root", str(root)], capsys)[0] == 0
    code, out, err = cli(["--data-root", str(root), "backfill", "l0_raw"], capsys)
    assert code == 1, err
    assert "FAILED l0_raw [b1|math]" in err and "Traceback" not in err
    assert "full logs:" in out and "next:" not in out


# --- item 8: export --format parquet --------------------------------------------------------------------

def test_export_format_parquet_writes_parquet_shards(home, tiers, tmp_path, capsys) -> None:
    argv = ["--data-root", str(tiers), "export", "pretrain", "--token-budget", "12000"]
    code, out, err = cli([*argv, "--out", str(tmp_path / "pq"), "--format", "parquet"], capsys)
    assert code == 0, err
    assert json.loads(out)["delivered_tokens"] > 0
    assert cli([*argv, "--out", str(tmp_path / "zst")], capsys)[0] == 0
    manifest, rows = read_export(tmp_path / "pq")
    paths = [tmp_path / "pq" / s["path"] for s in manifest["shards"]]
    assert paths and all(p.suffix == ".parquet" for p in paths)
    assert sum(pq.read_metadata(p).num_rows for p in paths) == sum(s["docs"] for s in manifest["shards"])
    _, zst_rows = read_export(tmp_path / "zst")
    assert len(rows) == len(zst_rows) > 0
    assert [r["doc_id"] for r in rows] == [r["doc_id"] for r in zst_rows]  # same seed, same mixture


def test_export_format_rejects_other_values(home, tiers, capsys) -> None:
    code, _, err = cli(["--data-root", str(tiers), "export", "pretrain", "--format", "csv"], capsys)
    one_line(code, err, "tier-assets export: error: argument --format: invalid choice: 'csv'")
