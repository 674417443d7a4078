"""run_protocol.py --launcher slurm through submitit: its local executor runs a sweep end to end with the tables,
skipping and re-submission of the local queue; without sbatch, one line."""
import json
import os
import sys

import pytest

import run_protocol

STUB = f"{sys.executable} -m tools.synthetic_runs"


def _argv(tmp_path, output, *launcher):
    return ["base2new", "--trainer", "CoCoOp", "--datasets", "dtd", "--seeds", "1", "2", "--root", str(tmp_path),
            "--output", str(output), "--load-epoch", "5", "--python", STUB, "--no-progress",
            "--slurm-folder", str(tmp_path / "submitit"), *launcher]


def _tables(output):
    return {suffix: open(os.path.join(output, "tables", f"base2new.{suffix}")).read() for suffix in ("md", "csv")}


@pytest.mark.slow
def test_submitit_sweep_resubmits_failures_and_gives_the_local_queues_tables(tmp_path, monkeypatch, capsys):
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("STUB_RECORD", str(record))
    assert run_protocol.main(_argv(tmp_path, tmp_path / "local")) == 0

    monkeypatch.setenv("STUB_FAIL", "train_base/dtd/shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1/seed2")
    cluster_argv = _argv(tmp_path, tmp_path / "cluster", "--launcher", "submitit-local", "--gpus-per-job", "0")
    record.write_text("")
    assert run_protocol.main(cluster_argv) == 1
    out = capsys.readouterr().out
    assert "4 jobs: 2 ran, 0 already done, 1 failed, 1 not started" in out, out
    assert len(record.read_text().splitlines()) == 3

    monkeypatch.delenv("STUB_FAIL")
    record.write_text("")
    assert run_protocol.main(cluster_argv) == 0
    assert "4 jobs: 2 ran, 2 already done, 0 failed" in capsys.readouterr().out
    rerun = [json.loads(line)["argv"] for line in record.read_text().splitlines()]
    assert len(rerun) == 2 and all("seed2" in call[call.index("--output-dir") + 1] for call in rerun)
    assert _tables(tmp_path / "cluster") == _tables(tmp_path / "local")


def test_slurm_without_sbatch_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert run_protocol.main(_argv(tmp_path, tmp_path / "out", "--launcher", "slurm")) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("run_protocol.py: error: --launcher slurm: sbatch is not on PATH (not a SLURM login "
                           "node?); use --launcher local")


def test_slurm_without_submitit_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit now raises ImportError
    assert run_protocol.main(_argv(tmp_path, tmp_path / "out", "--launcher", "slurm")) == 2
    assert capsys.readouterr().err.strip() == ("run_protocol.py: error: --launcher slurm needs submitit: pip install "
                                               "submitit (or the toolbox's 'slurm' extra)")
