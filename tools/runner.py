"""A queue of train.py jobs spread over GPU (or CPU) slots, one job per slot at a time.

Each job is a command, an output folder and an optional list of jobs it must wait for (a test run waits for
the training run whose checkpoint it loads). A job whose folder already holds a result
(``tools.results.is_run_done``) is skipped, so running a sweep again resumes what is missing; a job whose
prerequisite failed is not started and counts as failed. A job runs with ``CUDA_VISIBLE_DEVICES`` set to its
slot (an empty value for CPU slots), its stdout and stderr in ``<output_dir>/runner.log``. A job that exits 0
without leaving a result counts as failed.
"""
import os
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from tqdm import tqdm

from tools.results import is_run_done

RUNNER_LOG = "runner.log"
CPU_SLOT_PREFIX = "cpu"


@dataclass
class Job:
    """One command to run into ``output_dir``; ``after`` names jobs that must succeed first."""

    name: str
    command: list
    output_dir: str
    after: list = field(default_factory=list)
    done_check: Optional[Callable[[str], bool]] = None

    @property
    def log_path(self) -> str:
        return os.path.join(self.output_dir, RUNNER_LOG)

    def is_done(self) -> bool:
        return (self.done_check or is_run_done)(self.output_dir)


@dataclass
class Outcome:
    """What happened to one job."""

    job: Job
    status: str  # "skipped" (already done), "ok", "failed" or "blocked" (a prerequisite failed)
    slot: Optional[str] = None
    returncode: Optional[int] = None
    message: str = ""


@dataclass
class Summary:
    """Outcomes of a queue run, in job order."""

    outcomes: list

    def count(self, status: str) -> int:
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def failed(self) -> list:
        return [o for o in self.outcomes if o.status in ("failed", "blocked")]

    @property
    def ok(self) -> bool:
        return not self.failed

    def report(self) -> str:
        lines = [
            f"{len(self.outcomes)} jobs: {self.count('ok')} ran, {self.count('skipped')} already done, "
            f"{self.count('failed')} failed, {self.count('blocked')} not started (a prerequisite failed)"
        ]
        lines += [f"  FAILED {o.job.name}: {o.message} (log: {o.job.log_path})" for o in self.failed]
        return "\n".join(lines)


def parse_slots(gpus: str, jobs: Optional[int] = None) -> list[str]:
    """Slots from ``--gpus 0,1,2`` (one job per GPU) or ``--gpus cpu --jobs N`` (N CPU slots)."""
    if gpus.strip().lower() == "cpu":
        count = jobs or 1
        if count < 1:
            raise ValueError(f"--jobs must be >= 1, got {count}")
        return [f"{CPU_SLOT_PREFIX}{i}" for i in range(count)]
    slots = [slot.strip() for slot in gpus.split(",") if slot.strip()]
    if not slots or not all(slot.isdigit() for slot in slots):
        raise ValueError(f"--gpus expects GPU ids like 0,1,2 or 'cpu', got {gpus!r}")
    if len(set(slots)) != len(slots):
        raise ValueError(f"--gpus lists a GPU twice: {gpus!r}")
    if jobs is not None and jobs != len(slots):
        raise ValueError(f"--jobs {jobs} with --gpus {gpus}: one job runs per GPU, so --jobs is for cpu only")
    return slots


def _environment(slot: str) -> dict:
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = "" if slot.startswith(CPU_SLOT_PREFIX) else slot
    env["GRAM_RUNNER_SLOT"] = slot
    return env


def _check_jobs(jobs: list[Job]) -> None:
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise ValueError("job names must be unique")
    known = set()
    for job in jobs:
        missing = [name for name in job.after if name not in known]
        if missing:
            raise ValueError(f"job {job.name} waits for {missing[0]}, which is not an earlier job")
        known.add(job.name)


def run_jobs(
    jobs: list[Job], slots: list[str], cwd: Optional[str] = None, progress: bool = True, poll_seconds: float = 0.05
) -> Summary:
    """Run ``jobs`` over ``slots`` (at most one job per slot at any time), in order as slots free up."""
    if not slots:
        raise ValueError("run_jobs needs at least one slot")
    _check_jobs(jobs)
    outcomes = {job.name: Outcome(job, "pending") for job in jobs}
    for job in jobs:
        if job.is_done():
            outcomes[job.name].status = "skipped"
    pending = [job for job in jobs if outcomes[job.name].status == "pending"]
    free = list(slots)
    running = {}  # slot -> (job, process, log handle)
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(pending), disable=not progress, unit="job", desc="runs")
    try:
        while pending or running:
            for job in list(pending):
                states = [outcomes[name].status for name in job.after]
                if any(state in ("failed", "blocked") for state in states):
                    outcomes[job.name].status, outcomes[job.name].message = "blocked", f"waits for failed {job.after}"
                    pending.remove(job)
                    bar.update(1)
                elif free and all(state in ("ok", "skipped") for state in states):
                    slot = free.pop(0)
                    os.makedirs(job.output_dir, exist_ok=True)
                    log = open(job.log_path, "a")
                    process = subprocess.Popen(
                        job.command, cwd=cwd, env=_environment(slot), stdout=log, stderr=subprocess.STDOUT
                    )
                    running[slot] = (job, process, log)
                    outcomes[job.name].slot = slot
                    pending.remove(job)
            for slot, (job, process, log) in list(running.items()):
                returncode = process.poll()
                if returncode is None:
                    continue
                log.close()
                del running[slot]
                free.append(slot)
                outcome = outcomes[job.name]
                outcome.returncode = returncode
                if returncode != 0:
                    outcome.status, outcome.message = "failed", f"exit code {returncode}"
                elif not job.is_done():
                    outcome.status, outcome.message = "failed", "exited 0 but left no result"
                else:
                    outcome.status = "ok"
                bar.update(1)
            if running:
                time.sleep(poll_seconds)
    finally:
        for job, process, log in running.values():
            process.terminate()
            process.wait()
            log.close()
        bar.close()
    return Summary([outcomes[job.name] for job in jobs])
