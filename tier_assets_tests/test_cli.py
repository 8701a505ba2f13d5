"""The `tier-assets` command as a user runs it: exit codes, one-line errors, --data-root, failed runs, the demo.

Quick cases call ``main([...])`` in-process; the ones about failed runs and the
demo's console run the installed ``.venv/bin/tier-assets`` entry point in a
subprocess, each with a temporary DAGSTER_HOME and data root. Failures are
real: a registry source that is a directory cannot be opened by ``l0_raw``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from tier_assets.cli import build_parser, main

from .conftest import DEMO_DATA, REPO

ENTRY_POINT = Path(sys.executable).parent / "tier-assets"
# five of the smallest zh pages that L1 keeps: enough seeds (4) for the demo's classifier
SMALL_ZH_PAGES = tuple(f"{h}.html" for h in (
    "9f4c1adb9f61d954f33a02ef1919248e69c007dcbe9d903a0e77b739779951da",
    "83bd4dfc1e736b9a3885adc1ba5e74148b888887f494dc4e3f375a335e419a94",
    "45fcfa7d6741f4361646905a7fdbd1928f6c00e8d4ff29c44c9a51e40b6b2607",
    "aa1432d872173fe865badf36b3687cdc114c8e8b2a1186c90d6117160201377a",
    "090704b0cb2e2ae4e435507f38afe591b641a672afa133d7065f48992a444d9b"))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A temporary DAGSTER_HOME, a non-default data root, and a default one that must stay untouched."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    default_root = tmp_path / "default_root"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("TIER_ASSETS_DATA_ROOT", str(default_root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return {"home": home, "root": tmp_path / "data", "default_root": default_root, "tmp": tmp_path}


def cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``tier-assets argv`` run in-process."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def entry_point(argv: list[str], env: dict[str, Path], timeout: int = 900) -> subprocess.CompletedProcess:
    """The installed `tier-assets` command, as a shell runs it."""
    run_env = {**os.environ, "DAGSTER_HOME": str(env["home"]), "TIER_ASSETS_DATA_ROOT": str(env["default_root"]),
               "HF_HUB_OFFLINE": "1"}
    return subprocess.run([str(ENTRY_POINT), *argv], env=run_env, capture_output=True, text=True, timeout=timeout,
                          cwd=env["tmp"])


def write_registry(path: Path, name: str, domain: str, source: Path | str, fmt: str) -> Path:
    path.write_text(f"sources:\n  - name: {name}\n    domain: {domain}\n    path: {source}\n    format: {fmt}\n")
    return path


def unreadable_registry(tmp: Path) -> Path:
    """A math source that registers (the path exists) but cannot be opened: it is a directory."""
    source = tmp / "unreadable.jsonl"
    source.mkdir()
    return write_registry(tmp / "unreadable.yaml", "unreadable", "math", source, "jsonl")


def math_registry(tmp: Path, name: str, lines: int = 5) -> Path:
    source = tmp / f"{name}.jsonl"
    with open(DEMO_DATA / "math" / "arxiv-latex-sample.jsonl", encoding="utf-8") as f:
        source.write_text("".join(next(f) for _ in range(lines)))
    return write_registry(tmp / f"{name}.yaml", name, "math", source, "jsonl")


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


# --- item 6: --data-root is defined once, valid before or after any subcommand --------------------------

SUBCOMMANDS = {
    "demo": [], "add-batch": ["b1"], "lineage": ["x"], "dup-cluster": ["x"], "stats": [], "backfill": ["l0_raw"],
    "report": [], "export": ["sft"], "ask": ["what is a cursor?"], "serve-llm": [],
    "evaluate-l2": [str(REPO / "README.md")], "catalog": [], "verify-tiers": [],
    "evaluate-l4": [str(REPO / "README.md")],
}


def test_every_subcommand_is_covered() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(SUBCOMMANDS)


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_data_root_before_or_after_the_subcommand(command: str) -> None:
    import argparse

    def data_root(argv: list[str]) -> str | None:
        return build_parser().parse_args(argv, argparse.Namespace(data_root=None)).data_root

    rest = SUBCOMMANDS[command]
    assert data_root(["--data-root", "/before", command, *rest]) == "/before"
    assert data_root([command, *rest, "--data-root", "/after"]) == "/after"
    assert data_root([command, *rest]) is None


def test_evaluate_l2_uses_the_data_root_given_before_it(env, capsys) -> None:
    code, _, err = cli(["--data-root", str(env["root"]), "evaluate-l2", str(REPO / "README.md")], capsys)
    assert code == 2 and f"no en classifier under {env['root']}" in err


def test_empty_non_default_data_root_gives_one_line_per_command(env, capsys) -> None:
    """Every read command on an empty data root: a clear line naming that root, never the default one."""
    root = str(env["root"])
    for argv in (["stats"], ["stats", "funnel"], ["report"], ["report", "--out", str(env["tmp"] / "r.html")],
                 *[["export", stage] for stage in ("pretrain", "decay", "sft", "rag")],
                 ["export", "sft", "--token-budget", "100", "--seed", "3"]):
        code, _, err = cli([*argv[:1], "--data-root", root, *argv[1:]], capsys)
        assert_one_line_error(code, err, f"no tier data under {root}")
    for argv in (["lineage", "abc"], ["lineage", "abc", "--json"], ["dup-cluster", "abc"]):
        code, _, err = cli(["--data-root", root, *argv], capsys)
        assert_one_line_error(code, err, f"no tier data under {root}")
    for argv in (["ask", "what is a cursor?"], ["ask", "what is a cursor?", "-k", "3", "--min-score", "0.5", "--json"]):
        code, _, err = cli(["--data-root", root, *argv], capsys)
        assert code == 2 and f"no L4 index at {root}" in err
    code, out, _ = cli(["catalog", "--data-root", root], capsys)
    assert code == 0 and Path(out.strip()) == env["root"] / "catalog.duckdb" and Path(out.strip()).exists()
    for argv in (["backfill", "l1_filtered"], ["backfill", "l1_filtered", "--domain", "en", "--batch", "b1"],
                 ["backfill", "l2_selected", "--stale"]):
        code, _, err = cli(["--data-root", root, *argv], capsys)
        assert_one_line_error(code, err, "no batch partitions on the Dagster instance", str(env["home"]))
    assert not env["default_root"].exists()


def test_add_batch_writes_under_the_given_data_root(env, capsys) -> None:
    registry = math_registry(env["tmp"], "m")
    code, out, _ = cli(["add-batch", "b1", "--registry", str(registry), "--data-root", str(env["root"])], capsys)
    assert code == 0 and '"domains": ["math"]' in out
    assert (env["root"] / "batches" / "b1.json").exists() and not env["default_root"].exists()
    assert DagsterInstance.get().has_dynamic_partition("batch", "b1")


# --- item 11: bad arguments -> one line, exit 2 -------------------------------------------------------


@pytest.mark.parametrize(("argv", "needle"), [
    (["export", "sft", "--token-budget", "-5"], "--token-budget: expected a whole number >= 0"),
    (["export", "sft", "--token-budget", "lots"], "--token-budget: expected a whole number >= 0"),
    (["export", "nope"], "invalid choice"),
    (["stats", "bogus_query"], "unknown query 'bogus_query'"),
    (["ask", ""], "the question is empty"),
    (["ask", "   "], "the question is empty"),
    (["ask", "why?", "-k", "0"], "-k: expected a whole number >= 1"),
    (["ask", "why?", "--min-score", "nan"], "--min-score: expected a number, got 'nan'"),
    (["ask", "why?", "--min-score", "high"], "--min-score: expected a number, got 'high'"),
    (["add-batch", "../escape"], "invalid batch key '../escape'"),
    (["demo", "--batch", "a|b"], "invalid batch key 'a|b'"),
    (["demo", "--domain", "xx"], "invalid choice: 'xx'"),
    (["backfill", "l1_filtered", "--domain", "fr"], "invalid choice: 'fr'"),
    (["serve-llm", "--port", "99999"], "--port: expected a TCP port 0-65535"),
    (["evaluate-l2", "/no/such/file.jsonl"], "no such file: /no/such/file.jsonl"),
    (["evaluate-l2", str(REPO / "README.md"), "--limit", "0"], "--limit: expected a whole number >= 1"),
    (["nonsense"], "invalid choice: 'nonsense'"),
    ([], "required: command"),
])
def test_bad_arguments_exit_2_with_one_line(argv, needle, env, capsys) -> None:
    code, _, err = cli(argv, capsys)
    assert_one_line_error(code, err, needle)


@pytest.mark.parametrize(("argv", "needle"), [
    (["backfill", "nope"], "unknown asset 'nope'; known: l0_raw, l1_filtered"),
    (["add-batch", "b1", "--registry", "/no/such/registry.yaml"], "No such file or directory: '/no/such/registry.yaml'"),
    (["demo", "--registry", "/no/such/registry.yaml"], "cannot register batch 'demo-0001'"),
    (["evaluate-l2", str(REPO / "README.md"), "--classifier", "/no/such/dir"], "--classifier /no/such/dir"),
    (["evaluate-l2", str(REPO / "README.md"), "--llm-judge", "--llm-config", "{bad"], "--llm-config is not JSON"),
    (["serve-llm", "--model", "/no/such/model"], "--model /no/such/model: no such directory or file"),
])
def test_unknown_names_and_missing_files_exit_2_with_one_line(argv, needle, env, capsys) -> None:
    code, _, err = cli([*argv, "--data-root", str(env["root"])], capsys)
    assert_one_line_error(code, err, needle)


def test_registry_without_the_requested_domain(env, capsys) -> None:
    registry = math_registry(env["tmp"], "m")
    code, _, err = cli(["demo", "--registry", str(registry), "--domain", "zh", "--data-root", str(env["root"])],
                       capsys)
    assert_one_line_error(code, err, "batch 'demo-0001' has no source for domain(s) zh; its domains: math")


# --- item 2: failed runs exit non-zero, naming the partition and the error ---------------------------


def test_backfill_exits_1_naming_the_failed_partition_and_its_error(env) -> None:
    root = str(env["root"])
    for batch, registry in (("b1", unreadable_registry(env["tmp"])), ("b2", math_registry(env["tmp"], "good"))):
        assert entry_point(["add-batch", batch, "--registry", str(registry), "--data-root", root], env).returncode == 0
    done = entry_point(["--data-root", root, "backfill", "l0_raw"], env)
    assert done.returncode == 1, done.stderr
    failed = [line for line in done.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "[b1|math]" in failed[0]
    assert f"IsADirectoryError: [Errno 21] Is a directory: '{env['tmp'] / 'unreadable.jsonl'}'" in failed[0]
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("[backfill 1/2] l0_raw [b1|math]: FAILED: step l0_raw: IsADirectoryError")
               for line in lines)
    assert any(line.startswith("[backfill 2/2] l0_raw [b2|math]: l0_raw 5 kept / 0 quarantined") for line in lines)
    table = lines[lines.index(next(line for line in lines if line.startswith("tier "))) + 1:]
    assert table[0].split() == ["L0", "math", "5", "0", f"{_est_tokens(env['root'], 'b2'):,}"]
    runs = DagsterInstance.get().get_runs()
    assert sorted(r.status.value for r in runs) == ["FAILURE", "SUCCESS"]

    only_good = entry_point(["backfill", "l0_raw", "--batch", "b2", "--data-root", root], env)
    assert only_good.returncode == 0 and "FAILED" not in only_good.stdout + only_good.stderr


def _est_tokens(root: Path, batch: str) -> int:
    from tier_assets.curation.stats import run_sql
    from tier_assets.curation.storage import TierStore

    return next(r["est_tokens"] for r in run_sql(TierStore(root), "tier_summary") if r["batch"] == batch)


def test_demo_on_a_fresh_root_with_domain_exits_1_when_a_run_fails_and_logs_to_a_file(env) -> None:
    """Item 11's fresh root with --domain (the batch is created), item 2's exit code, item 8's quiet console."""
    registry = unreadable_registry(env["tmp"])
    done = entry_point(["demo", "--registry", str(registry), "--domain", "math", "--data-root", str(env["root"])],
                       env)
    assert done.returncode == 1, done.stderr
    assert "DagsterUnknownPartitionError" not in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("FAILED l0_raw+l1_filtered [demo-0001|math]: step l0_raw: "
                                          "IsADirectoryError")
    lines = done.stdout.splitlines()
    assert lines[0].startswith("[demo 1/5] l0_raw+l1_filtered [demo-0001|math]: FAILED: step l0_raw: ")
    assert lines[1:5] == [
        "[demo] l2_classifier [math]: skipped (l0_raw+l1_filtered failed)",
        "[demo] l2_selected+l3_refined+l4_organized [demo-0001|math]: skipped (l0_raw+l1_filtered failed)",
        "[demo] l4_index: skipped (no domain reached L4)",
        "[demo] tier_stats: skipped (no domain reached L4)",
    ]
    assert " - DEBUG - " not in done.stdout + done.stderr
    [log] = (env["root"] / "logs").glob("demo-*.log")
    assert f"full logs: {log};" in done.stdout
    text = log.read_text()
    assert " - DEBUG - " in text and "RUN_START" in text and "STEP_FAILURE" in text
    [run] = DagsterInstance.get().get_runs()
    assert run.status == DagsterRunStatus.FAILURE and run.tags["dagster/partition"] == "demo-0001|math"


def test_verbose_prints_dagster_logs_instead_of_writing_a_file(env) -> None:
    registry = unreadable_registry(env["tmp"])
    done = entry_point(["demo", "--verbose", "--registry", str(registry), "--domain", "math",
                        "--data-root", str(env["root"])], env)
    assert done.returncode == 1
    assert " - DEBUG - " in done.stderr and "STEP_FAILURE" in done.stderr
    assert "full logs: above (--verbose)" in done.stdout
    assert not (env["root"] / "logs").exists()


@pytest.mark.slow
@pytest.mark.timeout(3600)  # the LLM tiers on 2 shared cores
@pytest.mark.heavy
def test_demo_domain_from_an_empty_data_root(env) -> None:
    """`tier-assets demo --registry FILE --domain zh` on nothing: every tier through Dagster, a quiet console."""
    pages = env["tmp"] / "zh"
    pages.mkdir()
    for name in SMALL_ZH_PAGES:
        (pages / name).write_bytes((DEMO_DATA / "zh" / "magic-html" / name).read_bytes())
    registry = write_registry(env["tmp"] / "zh.yaml", "zh-html", "zh", f"{pages}/*.html", "html")
    done = entry_point(["demo", "--registry", str(registry), "--domain", "zh", "--data-root", str(env["root"])], env,
                       timeout=3500)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    steps = [line for line in lines if line.startswith("[demo ")]
    assert [s.split("]")[0] for s in steps] == [f"[demo {n}/5" for n in range(1, 6)]
    assert steps[0].startswith("[demo 1/5] l0_raw+l1_filtered [demo-0001|zh]: l0_raw 5 kept / 0 quarantined; "
                               "l1_filtered ")
    assert "docs/s" in steps[0] and "ETA" in steps[0] and steps[-1].endswith("done)")
    assert " - DEBUG - " not in done.stdout + done.stderr and "Traceback" not in done.stderr
    header = lines.index(next(line for line in lines if line.startswith("tier ")))
    table = [line.split() for line in lines[header + 1:] if line.startswith("L")]
    assert [row[:2] for row in table][:3] == [["L0", "zh"], ["L1", "zh"], ["L2", "zh"]]
    assert table[0][2:4] == ["5", "0"]
    assert any(line.startswith("full logs: ") for line in lines) and "make ui" in done.stdout
    runs = DagsterInstance.get().get_runs()
    assert len(runs) == 5 and all(r.status == DagsterRunStatus.SUCCESS for r in runs)
