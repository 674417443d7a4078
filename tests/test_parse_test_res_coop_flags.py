"""parse_test_res.py with CoOp's and Dassl's flags (--ci95, --test-log, --multi-exp, --keyword), and
--multi-exp over experiments of which some have no result yet."""
import csv
import os

import pytest

import parse_test_res
from tools.synthetic_runs import log_text, write_run


def _experiment(root, name, accuracies, **kwargs):
    for seed, accuracy in enumerate(accuracies, start=1):
        write_run(os.path.join(root, name, f"seed{seed}"), accuracy, **kwargs)


@pytest.fixture
def evaluation_root(tmp_path):
    """CoCoOp's xd_test layout: one experiment folder per target dataset, seeds inside."""
    root = tmp_path / "evaluation"
    _experiment(str(root), "dtd", [40, 50])
    _experiment(str(root), "eurosat", [60, 70])
    os.makedirs(root / "oxford_pets" / "seed1")  # started, no log yet
    unfinished = root / "ucf101" / "seed1"
    os.makedirs(unfinished)
    (unfinished / "log.txt").write_text(log_text(None, finished=False))  # training, no result yet
    os.makedirs(root / "sun397")  # not started at all
    return str(root)


def test_multi_exp_lists_experiments_without_a_result_and_goes_on(evaluation_root, capsys):
    assert parse_test_res.main([evaluation_root, "--multi-exp"]) == 0
    out = capsys.readouterr().out
    assert f"Summary of directory: {os.path.join(evaluation_root, 'dtd')}" in out
    assert "* accuracy: 45.00% +- 5.00%" in out and "* accuracy: 65.00% +- 5.00%" in out
    assert "Average performance\n* accuracy: 55.00%" in out  # over the experiments that have results
    assert "Missing (3 of 5 experiments have no result yet): oxford_pets, sun397, ucf101" in out


def test_multi_exp_table_marks_missing_experiments(evaluation_root, tmp_path):
    out_file = str(tmp_path / "summary.csv")
    assert parse_test_res.main([evaluation_root, "--multi-exp", "--format", "csv", "--out", out_file]) == 0
    rows = {row["Experiment"]: row for row in csv.DictReader(open(out_file))}
    assert rows["sun397"]["Runs"] == "0" and rows["sun397"]["accuracy"] == ""
    assert float(rows["Average"]["accuracy"]) == pytest.approx(55.0)


def test_multi_exp_fails_only_when_no_experiment_has_a_result(tmp_path, capsys):
    os.makedirs(tmp_path / "dtd" / "seed1")
    assert parse_test_res.main([str(tmp_path), "--multi-exp"]) == 1
    assert "Missing (1 of 1" in capsys.readouterr().out


def test_keyword_reports_only_that_metric(evaluation_root, capsys):
    directory = os.path.join(evaluation_root, "dtd")
    assert parse_test_res.main([directory, "--keyword", "macro_f1"]) == 0
    out = capsys.readouterr().out
    assert "* macro_f1: 44.00% +- 5.00%" in out  # synthetic runs have macro_f1 = accuracy - 1
    assert "* accuracy:" not in out and "* error:" not in out


def test_keyword_reads_any_metric_of_the_log_result_block(evaluation_root, capsys):
    assert parse_test_res.main([os.path.join(evaluation_root, "eurosat"), "--keyword", "correct"]) == 0
    assert "* correct: 650.00% +- 50.00%" in capsys.readouterr().out  # 600 and 700 of 1,000 (CoOp's format)


def test_coop_flags_together(evaluation_root, capsys):
    argv = [evaluation_root, "--multi-exp", "--ci95", "--test-log", "--keyword", "accuracy"]
    assert parse_test_res.main(argv) == 0
    out = capsys.readouterr().out
    assert "* accuracy: 45.00% +- 6.93%" in out  # 1.96 * 5 / sqrt(2)
    assert "Average performance\n* accuracy: 55.00%" in out
