"""The run launcher in dagster.yaml: Dagster's DefaultRunLauncher plus a run-worker health check.

Why: run monitoring (the daemon) can only tell a dead run from a slow one through the launcher's health
check, and the DefaultRunLauncher has none. Without it a run whose process was killed (``kill -9``, the
OOM killer, a reboot) while it ran from the CLI (``tier-assets backfill``, the demo) or after its code
server died stays STARTED forever. This launcher checks that the process that started the run (the
``pid`` of its RUN_START event) is still alive and is the same process (started before the run, not a
recycled pid); the daemon then marks a dead run FAILURE and ``run_retries`` re-executes it.

It assumes run workers run on the machine of the daemon, which holds for this project's one-machine,
SQLite instance; past one machine use a launcher with its own health checks (docs/scale.md).
"""

from __future__ import annotations

import psutil
from dagster import DagsterEventType, DagsterRun
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus

START_SLACK_S = 1.0  # the RUN_START event is written after its process started; clocks round


class LocalProcessRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose runs the daemon can health-check by process id."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        starts = self._instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_START)
        if not starts or starts[-1].dagster_event is None or starts[-1].dagster_event.pid is None:
            # any status but RUNNING makes the daemon fail the run: never fail one that cannot be judged
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no RUN_START event with a pid yet; not judged")
        pid, started_at = starts[-1].dagster_event.pid, starts[-1].timestamp
        return worker_health(pid, started_at)


def worker_health(pid: int, started_at: float) -> CheckRunHealthResult:
    """RUNNING while process ``pid`` lives and predates ``started_at``; FAILED once it is gone or a zombie."""
    try:
        proc = psutil.Process(pid)
        alive = proc.status() != psutil.STATUS_ZOMBIE and proc.create_time() <= started_at + START_SLACK_S
    except psutil.NoSuchProcess:
        alive = False
    except psutil.AccessDenied:  # another user's process under that pid exists: do not fail what we cannot see
        alive = True
    if alive:
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker process {pid} is alive")
    return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone (killed or crashed)")
