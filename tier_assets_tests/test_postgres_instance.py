"""The Dagster instance on Postgres (deploy/dagster.postgres.yaml) against a real, throwaway Postgres server
started from Debian's binaries (``initdb``, ``pg_ctl``) on 127.0.0.1: runs and event logs land in Postgres,
the daemon promotes an inbox file through the tiers with that instance, and a Postgres that is down fails
with its address before any partition is written."""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from tier_assets.curation.settings import RECIPES_DIR
from tier_assets.curation.sources import BatchManifest, SourceEntry, now_iso, write_manifest
from tier_assets.curation.storage import PartitionRef, TierStore
from tier_assets.definitions import build_definitions
from tier_assets.defs.registry import BATCH_PARTITIONS_NAME, partition_key
from tier_assets.runner import run_assets

from .conftest import DEMO_DATA, REPO, stop_process_group
from .test_ui import _free_port, _wait

pytestmark = pytest.mark.slow
psycopg2 = pytest.importorskip("psycopg2", reason="dagster-postgres is not installed: pip install -e '.[dev]'")

PROFILE = REPO / "deploy" / "dagster.postgres.yaml"
RP = DEMO_DATA / "en" / "redpajama-c4-sample.jsonl"
TIERS = ("L0", "L1", "L2", "L3", "L4")
LLM_POOL = "llm"
# The project's code location with its sensors (inbox, promotion) but without the tier_stats refresh, whose
# runs would only compete for the two cores.
PROMOTION_DEFS = """from dagster import Definitions

from tier_assets.definitions import build_definitions


def without_stats_refresh(full: Definitions) -> Definitions:
    return Definitions(assets=full.assets, resources=full.resources,
                       sensors=[s for s in full.sensors if s.name != "tier_stats_sensor"])


defs = without_stats_refresh(build_definitions())
"""


def _pg_bin() -> Path | None:
    """The directory of ``pg_ctl`` and ``initdb``: on PATH, or Debian's newest /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and (Path(on_path).resolve().parent / "initdb").exists():
        return Path(on_path).resolve().parent
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(debian[-1]).parent if debian else None


def _server_account() -> str | None:
    """Postgres refuses to run as root: as root, run it as the ``postgres`` account (or ``nobody``)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.skip("running as root and no unprivileged account (postgres, nobody) to run Postgres as")


@dataclass
class PgServer:
    """One Postgres cluster in a temp dir, listening on 127.0.0.1:``port`` only, password auth for ``user``."""

    bin: Path
    dir: Path
    port: int
    account: str | None
    user: str = "dagster"
    password: str = field(default_factory=lambda: secrets.token_hex(8))

    @classmethod
    def create(cls) -> PgServer:
        pg_bin = _pg_bin()
        if pg_bin is None:
            pytest.skip("Postgres binaries (initdb, pg_ctl) not found on PATH or under /usr/lib/postgresql/*/bin: "
                        "apt-get install postgresql (.ci/run does)")
        server = cls(pg_bin, Path(tempfile.mkdtemp(prefix="tier-assets-pg-")), _free_port(), _server_account())
        if server.account:
            account = pwd.getpwnam(server.account)
            os.chown(server.dir, account.pw_uid, account.pw_gid)
        (server.dir / "pw").write_text(server.password)
        if server.account:
            os.chown(server.dir / "pw", account.pw_uid, account.pw_gid)
        server._pg("initdb", "-D", str(server.dir / "data"), "-U", server.user, f"--pwfile={server.dir / 'pw'}",
                   "--auth=scram-sha-256", "-E", "UTF8", "--no-sync")
        return server

    def _pg(self, tool: str, *args: str) -> None:
        done = subprocess.run([str(self.bin / tool), *args], user=self.account, cwd=self.dir,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{tool} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}"

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c max_connections=200"
        self._pg("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"), "-w", "-t", "60",
                 "-o", options, "start")

    def stop(self) -> None:
        if (self.dir / "data" / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.dir / "data"), "-w", "-m", "fast", "stop")

    def connect(self, db: str = "postgres"):
        return psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password, dbname=db)

    def create_database(self, name: str) -> dict[str, str]:
        """A fresh database ``name``; returns the DAGSTER_PG_* environment that deploy/dagster.postgres.yaml reads."""
        conn = self.connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.env(name)

    def env(self, db: str, port: int | None = None) -> dict[str, str]:
        return {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(port or self.port),
                "DAGSTER_PG_USER": self.user, "DAGSTER_PG_PASSWORD": self.password, "DAGSTER_PG_DB": db}

    def query(self, db: str, sql: str, params: tuple = ()) -> list[tuple]:
        with self.connect(db) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        conn.close()
        return rows

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgServer]:
    """A server for the module; always stopped and deleted, whatever the tests did."""
    server = PgServer.create()
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            server.remove()


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Outside pytest's temp dirs: a concurrent pytest session prunes old ones while this module runs."""
    with tempfile.TemporaryDirectory(prefix="tier-assets-pg-test-") as tmp:
        yield Path(tmp)


def _home(workdir: Path) -> Path:
    home = workdir / "dagster_home"
    home.mkdir()
    shutil.copy(PROFILE, home / "dagster.yaml")
    return home


def _register_batch(root: Path, instance: DagsterInstance) -> None:
    write_manifest(root, BatchManifest("b1", now_iso(), [SourceEntry("rp", "en", "jsonl", str(RP), (), "rp/c4")]))
    instance.add_dynamic_partitions(BATCH_PARTITIONS_NAME, ["b1"])


def test_the_profile_keeps_run_monitoring_and_retries_of_dagster_yaml():
    profile, local = yaml.safe_load(PROFILE.read_text()), yaml.safe_load((REPO / "dagster.yaml").read_text())
    for section in ("run_monitoring", "run_retries", "run_launcher", "sensors", "schedules"):
        assert profile[section] == local[section], section
    assert profile["concurrency"]["pools"] == {"default_limit": 1, "granularity": "run"}


def test_the_kubernetes_example_is_a_valid_instance_config(monkeypatch):
    """deploy/dagster.k8s.yaml is not run here (no cluster): at least its instance sections must stay valid."""
    from dagster._config import Shape, process_config
    from dagster._core.instance.config import dagster_instance_config_schema, validate_concurrency_config

    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(name, "5432")
    for path in (PROFILE, REPO / "deploy" / "dagster.k8s.yaml"):
        config = yaml.safe_load(path.read_text())
        result = process_config(Shape(dagster_instance_config_schema()), config)
        assert result.success, (path.name, result.errors)
        validate_concurrency_config(config)  # raises on run-queue settings that conflict with `concurrency`
        assert config["storage"] == yaml.safe_load(PROFILE.read_text())["storage"], path.name


def test_the_llm_assets_take_a_slot_of_the_llm_pool(tmp_path):
    pools = {key.to_user_string(): a.op.pool for a in build_definitions(str(tmp_path)).assets for key in a.keys
             if getattr(a, "op", None) is not None}
    assert {k for k, pool in pools.items() if pool == LLM_POOL} == {"l2_classifier", "l3_refined", "l4_organized"}
    assert pools["l1_filtered"] is None and pools["l2_selected"] is None


def test_runs_and_event_logs_are_stored_in_postgres(postgres, workdir, monkeypatch):
    for name, value in postgres.create_database("instance").items():
        monkeypatch.setenv(name, value)
    root = workdir / "data"
    root.mkdir()
    instance = DagsterInstance.from_config(str(_home(workdir)))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 8
        assert concurrency.pool_config.default_pool_limit == 1
        assert instance.event_log_storage.supports_global_concurrency_limits  # pools need a real database
        _register_batch(root, instance)
        outcome = run_assets(build_definitions(str(root)), instance, ["l0_raw"], partition_key("en", "b1"))
        assert outcome.ok
    finally:
        instance.dispose()

    assert TierStore(root).count(PartitionRef("L0", "en", "b1")) == 10
    runs = postgres.query("instance", "SELECT run_id, status FROM runs")
    assert runs == [(outcome.run_id, "SUCCESS")]
    materialized = postgres.query(
        "instance", "SELECT asset_key, partition FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
        (outcome.run_id, "ASSET_MATERIALIZATION"))
    assert materialized == [('["l0_raw"]', "b1|en")]
    checks = postgres.query("instance", "SELECT check_name, execution_status FROM asset_check_executions "
                                        "WHERE run_id = %s", (outcome.run_id,))
    assert checks == [("records_accounted", "SUCCEEDED")]
    assert postgres.query("instance", "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = %s",
                          (BATCH_PARTITIONS_NAME,)) == [("b1",)]


def _refused(port: int) -> re.Pattern:
    return re.compile(rf'connection to server at "127\.0\.0\.1", port {port} failed: Connection refused')


def test_loading_the_instance_with_no_postgres_on_the_port_names_host_and_port(workdir, monkeypatch, postgres):
    port = _free_port()
    for name, value in postgres.env("instance", port=port).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(Exception) as raised:
        DagsterInstance.from_config(str(_home(workdir)))
    chain, exc = [], raised.value
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__
    assert any(_refused(port).search(message) for message in chain), chain


def test_the_cli_with_postgres_stopped_fails_naming_host_and_port_and_writes_no_partition(workdir, monkeypatch):
    server, root = PgServer.create(), workdir / "data"
    root.mkdir()
    try:
        server.start()
        for name, value in server.create_database("down").items():
            monkeypatch.setenv(name, value)
        env = {**os.environ, "DAGSTER_HOME": str(_home(workdir)), "TIER_ASSETS_DATA_ROOT": str(root),
               "HF_HUB_OFFLINE": "1"}
        instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
        _register_batch(root, instance)  # a batch the backfill would materialize
        instance.dispose()
        server.stop()  # Postgres goes down
        done = subprocess.run([str(Path(sys.executable).parent / "tier-assets"), "backfill", "l0_raw", "--domain", "en"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    finally:
        server.stop()
        server.remove()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("tier-assets backfill: error:")]
    assert "the Dagster instance's Postgres is unreachable" in line and _refused(server.port).search(line), line
    store = TierStore(root)
    assert not [ref for tier in TIERS for kind in ("tiers", "rejected") for ref in store.partitions(tier, kind)]


def _small_l2_recipe(path: Path) -> Path:
    """The shipped L2 recipe with few, short seeds: the classifier trains in seconds on two cores."""
    recipe = yaml.safe_load((RECIPES_DIR / "l2.yaml").read_text())
    recipe["defaults"].update(seeds=6, max_chars=300, max_references=2)
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture(scope="module")
def daemon(postgres):
    """``dagster-daemon run`` on the project's code location, with the Postgres profile as its instance."""
    with tempfile.TemporaryDirectory(prefix="tier-assets-pg-daemon-") as tmp:
        workdir = Path(tmp)
        home, root = _home(workdir), workdir / "data"
        root.mkdir()
        (home / "defs.py").write_text(PROMOTION_DEFS)
        (home / "workspace.yaml").write_text(yaml.safe_dump({"load_from": [{"python_file": {
            "relative_path": "defs.py", "working_directory": str(REPO), "location_name": "tier_assets"}}]}))
        pg_env = postgres.create_database("daemon")
        env = {**os.environ, **pg_env, "DAGSTER_HOME": str(home), "TIER_ASSETS_DATA_ROOT": str(root),
               "HF_HUB_OFFLINE": "1", "TIER_ASSETS_L2_RECIPE": str(_small_l2_recipe(workdir / "l2.yaml"))}
        log = workdir / "daemon.log"
        with open(log, "w") as out, pytest.MonkeyPatch.context() as mp:
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(home / "workspace.yaml")],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            for name, value in pg_env.items():  # the test's own view of the instance
                mp.setenv(name, value)
            instance = DagsterInstance.from_config(str(home))
            try:
                inbox = root / "inbox" / "en"
                inbox.mkdir(parents=True)
                shutil.copy(DEMO_DATA / "en" / "redpajama-cc-2023-06-sample.jsonl", inbox / "drop.jsonl.tmp")
                (inbox / "drop.jsonl.tmp").rename(inbox / "drop.jsonl")  # appear atomically
                yield {"store": TierStore(root), "instance": instance, "log": log}
            finally:
                stop_process_group(proc)
                instance.dispose()


def _wait_for(daemon: dict, predicate, timeout: float, what: str, step: float = 3.0):
    """``_wait``, with the daemon's log in the failure: a code location that fails to load shows only there."""
    try:
        return _wait(predicate, timeout, what, step)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- dagster-daemon log, last lines ---\n{daemon['log'].read_text()[-4000:]}") \
            from None


def _inbox_partition(store: TierStore, tier: str) -> PartitionRef | None:
    refs = [r for r in store.partitions(tier) if r.batch.startswith("inbox-")]
    return refs[0] if refs else None


def _successful_runs_of(instance: DagsterInstance, asset: str, partition: str) -> list[str]:
    runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.SUCCESS], tags={"dagster/partition": partition}))
    return [r.run_id for r in runs if r.asset_selection and asset in {k.to_user_string() for k in r.asset_selection}]


@pytest.mark.timeout(900)
def test_the_daemon_on_postgres_promotes_an_inbox_file_to_l1(daemon, postgres):
    store, instance = daemon["store"], daemon["instance"]
    ref = _wait_for(daemon, lambda: _inbox_partition(store, "L1"), 600,
                    "the daemon to ingest the inbox file and promote it to L1")
    assert store.count(PartitionRef("L0", "en", ref.batch)) == 10
    assert store.count(ref) + store.count(ref, "rejected") == 10
    partition = partition_key("en", ref.batch)
    # the L1 file lands before its run is marked SUCCESS
    l1_runs = _wait_for(daemon, lambda: _successful_runs_of(instance, "l1_filtered", partition), 120,
                        "the L1 run to succeed")
    (l0_run,) = _successful_runs_of(instance, "l0_raw", partition)
    stored = postgres.query("daemon", "SELECT run_id, status FROM runs WHERE run_id = ANY(%s)", ([l0_run, *l1_runs],))
    assert sorted(stored) == sorted((r, "SUCCESS") for r in [l0_run, *l1_runs])
    assert postgres.query("daemon", "SELECT count(*) FROM job_ticks WHERE status = 'SUCCESS'")[0][0] >= 2


@pytest.mark.timeout(1200)
def test_the_daemon_on_postgres_promotes_an_inbox_file_to_l2_through_the_llm_pool(daemon, postgres):
    store, instance = daemon["store"], daemon["instance"]
    ref = _wait_for(daemon, lambda: _inbox_partition(store, "L2"), 1200, "the daemon to promote the inbox file to L2")
    l1 = PartitionRef("L1", "en", ref.batch)
    assert store.exists(ref) and store.exists(ref, "rejected")
    assert store.count(ref) + store.count(ref, "rejected") == store.count(l1)
    partition = partition_key("en", ref.batch)
    l2_runs = _wait_for(daemon, lambda: _successful_runs_of(instance, "l2_selected", partition), 120,
                        "the L2 run to succeed")
    (classifier_run,) = _successful_runs_of(instance, "l2_classifier", "en")
    assert instance.get_run_by_id(classifier_run).run_op_concurrency.all_pools == {LLM_POOL}
    stored = postgres.query("daemon", "SELECT run_id, status FROM runs WHERE run_id = ANY(%s)",
                            ([classifier_run, *l2_runs],))
    assert sorted(stored) == sorted((r, "SUCCESS") for r in [classifier_run, *l2_runs])
    # the queue initialized the pool from `default_limit` when the classifier's run asked for it
    assert postgres.query("daemon", 'SELECT concurrency_key, "limit" FROM concurrency_limits') == [(LLM_POOL, 1)]
