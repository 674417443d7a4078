"""The job queue: one job per slot at a time, skip finished runs, report failures; run_protocol end to end."""
import json
import os
import sys

import pytest

import run_protocol
from tools.runner import Job, parse_slots, run_jobs
from tools.synthetic_runs import write_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUB = f"{sys.executable} -m tools.synthetic_runs"

# A fake job: records its slot and start/end times, sleeps, then writes a result (or fails).
FAKE_JOB = """
import json, os, sys, time
out, seconds, code = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
start = time.time()
time.sleep(seconds)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "timing.json"), "w") as f:
    json.dump({"slot": os.environ["CUDA_VISIBLE_DEVICES"], "start": start, "end": time.time()}, f)
if code == 0:
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"accuracy": 50.0}, f)
sys.exit(code)
"""


def _job(tmp_path, name, seconds=0.3, code=0, after=()):
    out = str(tmp_path / name)
    return Job(name, [sys.executable, "-c", FAKE_JOB, out, str(seconds), str(code)], out, list(after))


def _timing(job):
    with open(os.path.join(job.output_dir, "timing.json")) as handle:
        return json.load(handle)


def test_never_two_jobs_on_one_slot(tmp_path):
    jobs = [_job(tmp_path, f"job{i}") for i in range(6)]
    summary = run_jobs(jobs, ["0", "1"], progress=False)
    assert summary.ok and summary.count("ok") == 6
    timings = [_timing(job) for job in jobs]
    assert {t["slot"] for t in timings} == {"0", "1"}
    for slot in ("0", "1"):
        intervals = sorted((t["start"], t["end"]) for t in timings if t["slot"] == slot)
        for (_, end), (start, _) in zip(intervals, intervals[1:]):
            assert start >= end, f"two jobs overlapped on slot {slot}"
    events = sorted([(t["start"], 1) for t in timings] + [(t["end"], -1) for t in timings])
    running, peak = 0, 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 2  # both slots were used at once, never more


def test_finished_jobs_are_skipped_and_failures_reported(tmp_path):
    done = _job(tmp_path, "done")
    write_run(done.output_dir, 60.0)
    failing = _job(tmp_path, "failing", seconds=0.0, code=3)
    waiting = _job(tmp_path, "waiting", after=["failing"])
    fine = _job(tmp_path, "fine", seconds=0.0)
    summary = run_jobs([done, failing, waiting, fine], ["cpu0"], progress=False)
    assert [o.status for o in summary.outcomes] == ["skipped", "failed", "blocked", "ok"]
    assert not os.path.exists(os.path.join(done.output_dir, "timing.json"))
    assert not summary.ok
    assert failing.log_path in summary.report() and "exit code 3" in summary.report()
    assert summary.outcomes[1].slot == "cpu0"


def test_job_that_exits_zero_without_a_result_fails(tmp_path):
    job = Job("silent", [sys.executable, "-c", "pass"], str(tmp_path / "silent"))
    summary = run_jobs([job], ["0"], progress=False)
    assert summary.outcomes[0].status == "failed" and "no result" in summary.outcomes[0].message


def test_parse_slots():
    assert parse_slots("0,1,2") == ["0", "1", "2"]
    assert parse_slots("cpu", 3) == ["cpu0", "cpu1", "cpu2"]
    for bad in ("", "0,0", "a,b"):
        with pytest.raises(ValueError, match="--gpus"):
            parse_slots(bad)
    with pytest.raises(ValueError, match="--jobs"):
        parse_slots("0,1", 4)


def test_job_order_is_checked(tmp_path):
    with pytest.raises(ValueError, match="not an earlier job"):
        run_jobs([_job(tmp_path, "a", after=["b"]), _job(tmp_path, "b")], ["0"], progress=False)


def test_run_protocol_base2new_runs_resumes_and_tabulates(tmp_path, capsys, monkeypatch):
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("STUB_RECORD", str(record))
    output = str(tmp_path / "output")
    argv = ["base2new", "--trainer", "CoCoOp", "--datasets", "dtd", "eurosat", "--seeds", "1", "2",
            "--root", str(tmp_path), "--output", output, "--gpus", "cpu", "--jobs", "2", "--load-epoch", "5",
            "--python", STUB, "--no-progress"]
    assert run_protocol.main(argv) == 0
    calls = [json.loads(line)["argv"] for line in record.read_text().splitlines()]
    assert len(calls) == 8  # 2 datasets x 2 seeds x (train_base, test_new)
    test_call = next(c for c in calls if "--eval-only" in c)
    train_dir = test_call[test_call.index("--model-dir") + 1]
    assert "/base2new/train_base/" in train_dir and test_call[test_call.index("--load-epoch") + 1] == "5"
    out = capsys.readouterr().out
    assert "| Average " in out and "| CoCoOp " in out  # complete over the datasets asked for
    for suffix in ("md", "csv", "png"):
        assert os.path.isfile(os.path.join(output, "tables", f"base2new.{suffix}"))
    record.write_text("")
    assert run_protocol.main(argv) == 0
    assert record.read_text() == ""  # everything was already done


def test_run_protocol_exits_nonzero_and_blocks_dependents_on_failure(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STUB_FAIL", "train_base/dtd")
    argv = ["base2new", "--trainer", "CoCoOp", "--datasets", "dtd", "--seeds", "1", "--root", str(tmp_path),
            "--output", str(tmp_path / "out"), "--load-epoch", "5", "--python", STUB, "--no-progress"]
    assert run_protocol.main(argv) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "runner.log" in out and "1 not started" in out


def test_gram_trainer_without_meta_checkpoint_is_refused(tmp_path):
    argv = ["fewshot", "--trainer", "CoOp_GRAM", "--datasets", "dtd", "--root", str(tmp_path),
            "--output", str(tmp_path / "out"), "--dry-run"]
    with pytest.raises(SystemExit, match="meta checkpoint"):
        run_protocol.main(argv)


def test_run_protocol_refuses_a_protocol_the_trainer_does_not_run(tmp_path, capsys):
    argv = ["tta", "--trainer", "CoOp", "--config", "vit_b16_ep50", "--root", str(tmp_path), "--dry-run"]
    assert run_protocol.main(argv) == 2
    assert "CoOp has no tta protocol" in capsys.readouterr().err


# A stand-in train.py for persistent workers: records its process and thread budget, then succeeds,
# raises, or kills its own process, as asked.
STUB_TRAIN = """
import argparse, json, os

def build_parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("mode")
    return parser

def main(args):
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "process.json"), "w") as f:
        json.dump({"pid": os.getpid(), "threads": os.environ.get("OMP_NUM_THREADS")}, f)
    print("stub ran", args.mode)
    if args.mode == "raise":
        raise RuntimeError("stub failure")
    if args.mode == "die":
        os._exit(3)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"accuracy": 50.0}, f)

if __name__ == "__main__":
    main(build_parser().parse_args())
"""


def _stub_jobs(tmp_path, modes):
    (tmp_path / "train.py").write_text(STUB_TRAIN)
    return [Job(f"job{i}", [sys.executable, "train.py", str(tmp_path / f"out{i}"), mode], str(tmp_path / f"out{i}"))
            for i, mode in enumerate(modes)]


def _process(job):
    with open(os.path.join(job.output_dir, "process.json")) as handle:
        return json.load(handle)


def test_persistent_worker_runs_jobs_in_one_process_and_survives_a_failing_job(tmp_path):
    jobs = _stub_jobs(tmp_path, ["ok", "raise", "ok", "ok"])
    summary = run_jobs(jobs, ["cpu0"], cwd=str(tmp_path), progress=False, persistent_workers=True)
    assert [o.status for o in summary.outcomes] == ["ok", "failed", "ok", "ok"]
    assert summary.outcomes[1].returncode == 1
    with open(jobs[1].log_path) as handle:
        log = handle.read()
    assert "stub ran raise" in log and "RuntimeError: stub failure" in log
    pids = {_process(job)["pid"] for job in jobs}
    assert len(pids) == 1 and os.getpid() not in pids  # one worker process for the slot, not the runner


def test_persistent_worker_that_dies_fails_its_job_and_is_replaced(tmp_path):
    jobs = _stub_jobs(tmp_path, ["ok", "die", "ok"])
    summary = run_jobs(jobs, ["cpu0"], cwd=str(tmp_path), progress=False, persistent_workers=True)
    assert [o.status for o in summary.outcomes] == ["ok", "failed", "ok"]
    assert summary.outcomes[1].returncode == 3
    assert _process(jobs[0])["pid"] == _process(jobs[1])["pid"] != _process(jobs[2])["pid"]


def test_cpu_slots_share_the_cores_unless_the_user_set_threads(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    jobs = _stub_jobs(tmp_path, ["ok", "ok"])
    assert run_jobs(jobs, ["cpu0", "cpu1"], cwd=str(tmp_path), progress=False).ok
    assert {_process(job)["threads"] for job in jobs} == {"4"}
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    (tmp_path / "user").mkdir()
    jobs = _stub_jobs(tmp_path / "user", ["ok"])
    assert run_jobs(jobs, ["cpu0", "cpu1"], cwd=str(tmp_path / "user"), progress=False).ok
    assert _process(jobs[0])["threads"] == "1"
