"""A queue of train.py jobs spread over GPU (or CPU) slots, one job per slot at a time.

Each job is a command, an output folder and an optional list of jobs it must wait for (a test run waits for
the training run whose checkpoint it loads). A job whose folder already holds a result
(``tools.results.is_run_done``) is skipped, so running a sweep again resumes what is missing; a job whose
prerequisite failed is not started and counts as failed. A job runs with ``CUDA_VISIBLE_DEVICES`` set to its
slot (an empty value for CPU slots), its stdout and stderr in ``<output_dir>/runner.log``. A job that exits 0
without leaving a result counts as failed.

With ``persistent_workers=True`` a ``<python> train.py ...`` job runs in a long-lived worker of its slot
(``tools/train_worker.py``) instead of a new process, which pays torch's start-up once per slot rather than
once per job (several seconds each: most of a tiny-model run on a CPU). Other commands still get a process.
"""
import json
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


def _environment(slot: str, cpu_threads: Optional[int] = None) -> dict:
    """The slot's environment: its GPU, and for CPU slots a share of the cores (``cpu_threads``) unless the
    user set ``OMP_NUM_THREADS`` (N jobs with all cores each would oversubscribe the CPU several times)."""
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = "" if slot.startswith(CPU_SLOT_PREFIX) else slot
    env["GRAM_RUNNER_SLOT"] = slot
    if cpu_threads and slot.startswith(CPU_SLOT_PREFIX) and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(cpu_threads)
    return env


def cpu_threads_per_slot(slots: list[str]) -> int:
    """The cores divided among the CPU slots (at least one thread each)."""
    cpu_slots = sum(slot.startswith(CPU_SLOT_PREFIX) for slot in slots)
    return max(1, (os.cpu_count() or 1) // max(cpu_slots, 1))


WORKER_SCRIPTS = ("train.py",)  # entry points a persistent worker can run (``main`` + ``build_parser``)
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_worker.py")


def _worker_split(command: list) -> Optional[tuple]:
    """``(interpreter, script, argv)`` when ``command`` runs a worker-capable script, else None."""
    for index, part in enumerate(command[1:], start=1):
        if os.path.basename(part) in WORKER_SCRIPTS:
            return command[:index], part, command[index + 1:]
    return None


class _WorkerJob:
    """A job handed to a persistent worker; polled like a ``Popen``."""

    def __init__(self, worker: "_PersistentWorker", done_path: str):
        self.worker = worker
        self.done_path = done_path

    def poll(self) -> Optional[int]:
        if os.path.exists(self.done_path):
            with open(self.done_path) as handle:
                code = int(handle.read().strip() or 1)
            os.remove(self.done_path)
            return code
        died = self.worker.process.poll()
        return None if died is None else (died or 1)

    def terminate(self) -> None:
        self.worker.process.terminate()

    def wait(self) -> None:
        self.worker.process.wait()


class _PersistentWorker:
    """One ``tools/train_worker.py`` process bound to a slot (its environment and working directory)."""

    def __init__(self, interpreter: list, slot: str, cwd: Optional[str], cpu_threads: Optional[int] = None):
        self.interpreter = list(interpreter)
        self.process = subprocess.Popen(self.interpreter + [WORKER], cwd=cwd, env=_environment(slot, cpu_threads),
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, text=True)

    def alive_for(self, interpreter: list) -> bool:
        return self.process.poll() is None and self.interpreter == list(interpreter)

    def submit(self, script: str, argv: list, job: Job) -> _WorkerJob:
        done = os.path.join(os.path.abspath(job.output_dir), f".runner-exit-{os.getpid()}")
        if os.path.exists(done):
            os.remove(done)
        request = {"script": script, "argv": argv, "log": os.path.abspath(job.log_path), "done": done}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return _WorkerJob(self, done)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def check_jobs(jobs: list[Job]) -> None:
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
    jobs: list[Job], slots: list[str], cwd: Optional[str] = None, progress: bool = True, poll_seconds: float = 0.05,
    persistent_workers: bool = False,
) -> Summary:
    """Run ``jobs`` over ``slots`` (at most one job per slot at any time), in order as slots free up;
    ``persistent_workers`` runs ``train.py`` jobs in one long-lived process per slot."""
    if not slots:
        raise ValueError("run_jobs needs at least one slot")
    check_jobs(jobs)
    outcomes = {job.name: Outcome(job, "pending") for job in jobs}
    for job in jobs:
        if job.is_done():
            outcomes[job.name].status = "skipped"
    pending = [job for job in jobs if outcomes[job.name].status == "pending"]
    free = list(slots)
    running = {}  # slot -> (job, process, log handle)
    workers = {}  # slot -> _PersistentWorker
    threads = cpu_threads_per_slot(slots)

    def start(job: Job, slot: str, log):
        split = _worker_split(job.command) if persistent_workers else None
        if split is None:
            return subprocess.Popen(job.command, cwd=cwd, env=_environment(slot, threads), stdout=log,
                                    stderr=subprocess.STDOUT)
        interpreter, script, argv = split
        if slot not in workers or not workers[slot].alive_for(interpreter):
            if slot in workers:
                workers[slot].close()
            workers[slot] = _PersistentWorker(interpreter, slot, cwd, threads)
        log.flush()
        return workers[slot].submit(script, argv, job)
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
                    process = start(job, slot, log)
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
        for worker in workers.values():
            worker.close()
        bar.close()
    return Summary([outcomes[job.name] for job in jobs])
