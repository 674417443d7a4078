"""run_protocol.py on bad input (one line before any job starts) and with a job that dies (the next sweep
finishes it and the table equals an uninterrupted sweep's). Jobs run a stand-in train.py (tools.synthetic_runs)."""
import os
import sys

import pytest

import run_protocol

STUB = f"{sys.executable} -m tools.synthetic_runs"


def sweep(tmp_path, output, *extra):
    return run_protocol.main(["fewshot", "--trainer", "CoOp", "--datasets", "dtd", "eurosat", "--shots", "1",
                              "--seeds", "1", "2", "--root", str(tmp_path), "--output", str(output), "--python", STUB,
                              "--no-progress", *extra])


@pytest.mark.scenario("run_protocol.py", "bad input")
@pytest.mark.parametrize("argv,expected", [
    (["--datasets", "nosuch"], "configs/datasets/nosuch.yaml not found (for "),
    (["--config", "nosuch"], "configs/trainers/CoOp/nosuch.yaml not found"),
    (["--root", "/nonexistent/datasets"], "--root /nonexistent/datasets is not a directory"),
    (["--gpus", "0,x"], "--gpus expects GPU ids like 0,1,2 or 'cpu', got '0,x'"),
], ids=["unknown-dataset", "unknown-config", "missing-root", "bad-gpus"])
def test_bad_input_is_one_line_before_any_job(tmp_path, capsys, argv, expected):
    base = ["fewshot", "--trainer", "CoOp", "--root", str(tmp_path), "--output", str(tmp_path / "out"),
            "--python", STUB, "--no-progress"]
    assert run_protocol.main(base + argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("run_protocol.py: error: ") and expected in err and "\n" not in err
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.scenario("run_protocol.py", "bad input")
def test_gram_trainer_without_meta_checkpoint_or_split_is_one_line(tmp_path):
    argv = ["fewshot", "--trainer", "CoOp_GRAM", "--root", str(tmp_path), "--output", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_:
        run_protocol.main(argv)
    assert "meta checkpoint" in str(exit_.value.code) and "\n" not in str(exit_.value.code)


@pytest.mark.scenario("run_protocol.py", "fault")
def test_a_job_that_dies_is_finished_by_the_next_sweep_with_the_same_table(tmp_path, monkeypatch, capsys):
    assert sweep(tmp_path, tmp_path / "clean") == 0
    with open(tmp_path / "clean" / "tables" / "fewshot.csv") as handle:
        clean_table = handle.read()
    monkeypatch.setenv("STUB_FAIL", "eurosat/CoOp/vit_b16_ep50_1shots/nctx16_cscFalse_ctpend/seed2")
    assert sweep(tmp_path, tmp_path / "cut") == 1
    assert "FAILED" in capsys.readouterr().out
    monkeypatch.delenv("STUB_FAIL")
    assert sweep(tmp_path, tmp_path / "cut") == 0
    assert "1 ran, 3 already done, 0 failed" in capsys.readouterr().out
    with open(tmp_path / "cut" / "tables" / "fewshot.csv") as handle:
        assert handle.read() == clean_table
