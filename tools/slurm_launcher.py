"""The job queue of ``tools/runner.py`` on a SLURM cluster, through submitit (``run_protocol.py --launcher slurm``).

Same jobs, same rules as the local queue: a job whose folder already holds a result is skipped (so a
sweep run again re-submits exactly the runs that are missing or failed), a job whose prerequisite
failed is not submitted and counts as blocked, a job that exits 0 without leaving a result counts as
failed. Jobs are submitted in waves: every job whose prerequisites are done goes into one SLURM job
array (``--array-parallelism`` of them at once), and the next wave waits for it. Each array task runs
the job's command in the repository with its output in ``<output_dir>/runner.log``; submitit's own
logs are in ``--slurm-folder``. ``cluster="local"`` runs the same path with submitit's local executor
(for trying a sweep on one machine).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Optional

from tools.runner import Job, Outcome, Summary, check_jobs


class LauncherError(RuntimeError):
    """The cluster launcher cannot start (one-line message)."""


@dataclass
class SlurmSettings:
    folder: str  # submitit's logs and pickles
    partition: Optional[str] = None
    time_minutes: int = 240
    gpus_per_job: int = 1
    cpus_per_job: Optional[int] = None
    array_parallelism: int = 32
    cluster: str = "slurm"  # or "local": submitit's local executor


@dataclass
class CommandTask:
    """A picklable callable that runs one job's command on the node; returns its exit code."""

    command: list
    cwd: Optional[str]
    log_path: str

    def __call__(self) -> int:
        with open(self.log_path, "a") as log:
            return subprocess.run(self.command, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT).returncode


def build_executor(settings: SlurmSettings):
    """A submitit executor for ``settings``; a clear ``LauncherError`` when submitit or sbatch is absent."""
    try:
        import submitit
    except ImportError:
        raise LauncherError("--launcher slurm needs submitit: pip install submitit (or the toolbox's "
                            "'slurm' extra)") from None
    if settings.cluster == "slurm" and shutil.which("sbatch") is None:
        raise LauncherError("--launcher slurm: sbatch is not on PATH (not a SLURM login node?); "
                            "use --launcher local")
    executor = submitit.AutoExecutor(folder=settings.folder, cluster=settings.cluster)
    parameters = {"timeout_min": settings.time_minutes, "gpus_per_node": settings.gpus_per_job,
                  "nodes": 1, "tasks_per_node": 1, "slurm_array_parallelism": settings.array_parallelism}
    if settings.partition:
        parameters["slurm_partition"] = settings.partition
    if settings.cpus_per_job:
        parameters["cpus_per_task"] = settings.cpus_per_job
    executor.update_parameters(**parameters)
    return executor


def _finish(outcome: Outcome, submitted) -> None:
    try:
        returncode = submitted.result()
    except Exception as error:  # a job killed by SLURM (time limit, node failure) or one that raised
        outcome.status, outcome.message = "failed", f"{type(error).__name__}: {str(error).strip().splitlines()[-1:]}"
        return
    outcome.returncode = returncode
    if returncode != 0:
        outcome.status, outcome.message = "failed", f"exit code {returncode}"
    elif not outcome.job.is_done():
        outcome.status, outcome.message = "failed", "exited 0 but left no result"
    else:
        outcome.status = "ok"


def run_jobs_submitit(jobs: list[Job], settings: SlurmSettings, cwd: Optional[str] = None, executor=None) -> Summary:
    """Run ``jobs`` as SLURM job arrays (waves of jobs whose prerequisites are done)."""
    check_jobs(jobs)
    executor = executor or build_executor(settings)
    if cwd:  # the tasks unpickle tools.slurm_launcher on the node: the repository must be importable there
        paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if cwd not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join([cwd] + [path for path in paths if path])
    outcomes = {job.name: Outcome(job, "skipped" if job.is_done() else "pending") for job in jobs}
    pending = [job for job in jobs if outcomes[job.name].status == "pending"]
    while pending:
        wave = []
        for job in list(pending):
            states = [outcomes[name].status for name in job.after]
            if any(state in ("failed", "blocked") for state in states):
                outcomes[job.name].status, outcomes[job.name].message = "blocked", f"waits for failed {job.after}"
                pending.remove(job)
            elif all(state in ("ok", "skipped") for state in states):
                wave.append(job)
        if not wave:
            continue
        for job in wave:
            pending.remove(job)
        tasks = [CommandTask(list(job.command), cwd, job.log_path) for job in wave]
        for job in wave:
            os.makedirs(job.output_dir, exist_ok=True)
        with executor.batch():
            submitted = [executor.submit(task) for task in tasks]
        for job, handle in zip(wave, submitted):
            outcomes[job.name].slot = f"slurm:{handle.job_id}"
            _finish(outcomes[job.name], handle)
    return Summary([outcomes[job.name] for job in jobs])
