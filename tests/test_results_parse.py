"""Reading one run folder: results.json first, else the log's final result block (CoOp's rule)."""
import json
import os

import pytest

from tools.protocol_card import write_results_json
from tools.results import final_result_block, find_run_dirs, is_run_done, read_run
from tools.synthetic_runs import log_text, result_block, write_run


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def test_final_block_after_finish_training_wins_over_validation_block():
    text = "epoch [1/2] batch [1/1]\n" + result_block(11.0) + "epoch [2/2] batch [1/1]\nFinish training\n"
    text += result_block(77.5)
    assert final_result_block(text)["accuracy"] == 77.5


def test_unfinished_training_has_no_result_even_with_a_validation_block():
    text = "epoch [1/5] batch [1/1]\n" + result_block(40.0) + "epoch [2/5] batch [1/1]\n"
    assert final_result_block(text) is None
    assert final_result_block(text, test_log=True)["accuracy"] == 40.0


def test_eval_only_log_takes_the_last_block_and_reads_comma_totals():
    text = result_block(10.0) + result_block(64.25, total=12345)
    metrics = final_result_block(text)
    assert metrics["accuracy"] == 64.25
    assert metrics["total"] == 12345
    assert metrics["error"] == pytest.approx(35.75)


def test_old_dassl_end_signal_finished_training_is_accepted():
    text = "epoch [1/1] batch [1/1]\nFinished training\n" + result_block(55.0)
    assert final_result_block(text)["accuracy"] == 55.0


def test_results_json_is_preferred_over_the_log(tmp_path):
    run = write_run(str(tmp_path / "seed1"), 61.0)
    write_results_json(run, {"accuracy": 62.5, "error": 37.5, "macro_f1": 60.0, "dataset": "DTD"})
    result = read_run(run)
    assert result.accuracy == 62.5 and result.source.endswith("results.json")
    assert result.fields["dataset"] == "DTD"


def test_bad_results_json_names_the_file(tmp_path):
    _write(str(tmp_path / "seed1" / "results.json"), "{not json")
    with pytest.raises(ValueError, match="results.json"):
        read_run(str(tmp_path / "seed1"))
    _write(str(tmp_path / "seed2" / "results.json"), json.dumps({"error": 3}))
    with pytest.raises(ValueError, match="accuracy"):
        read_run(str(tmp_path / "seed2"))


def test_resumed_run_reads_the_newer_timestamped_log(tmp_path):
    run = str(tmp_path / "seed1")
    _write(os.path.join(run, "log.txt"), log_text(None, finished=False))
    assert not is_run_done(run)
    _write(os.path.join(run, "log.txt-2024-01-02-03-04-05"), log_text(71.0))
    assert is_run_done(run)
    assert read_run(run).accuracy == 71.0


def test_large_log_tail_is_enough(tmp_path):
    run = str(tmp_path / "seed1")
    noise = "".join(f"epoch [1/9] batch [{i}/9999] loss 1.0\n" for i in range(9999))
    _write(os.path.join(run, "log.txt"), noise + "Finish training\n" + result_block(66.0))
    assert read_run(run).accuracy == 66.0


def test_find_run_dirs_does_not_descend_into_run_folders(tmp_path):
    write_run(str(tmp_path / "a" / "seed1"), 50.0)
    write_run(str(tmp_path / "a" / "seed1" / "prompt_learner"), 50.0)
    write_run(str(tmp_path / "b" / "seed2"), 50.0)
    found = [os.path.relpath(p, tmp_path) for p in find_run_dirs(str(tmp_path))]
    assert found == [os.path.join("a", "seed1"), os.path.join("b", "seed2")]
