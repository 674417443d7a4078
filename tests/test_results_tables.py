"""Paper tables from synthetic run folders with known accuracies, checked against hand computation."""
import csv
import io
import math
import os

import pytest

import parse_test_res
from tools import names, plots, tables
from tools.synthetic_runs import write_run
from tools.tables import Stat

COOP = "CoOp/vit_b16_ep50_{shots}shots/nctx16_cscFalse_ctpend"


def _runs(root, relative, accuracies, **kwargs):
    for seed, accuracy in enumerate(accuracies, start=1):
        write_run(os.path.join(root, relative, f"seed{seed}"), accuracy, **kwargs)


def _row(table, *keys):
    matches = [row for row in table.rows if tuple(row[: len(keys)]) == keys]
    assert len(matches) == 1, f"{keys} in {table.rows}"
    return matches[0]


@pytest.fixture
def fewshot_root(tmp_path):
    root = str(tmp_path)
    _runs(root, "oxford_pets/" + COOP.format(shots=16), [90, 91, 95])
    _runs(root, "dtd/" + COOP.format(shots=16), [60, 62, 64], with_json=True)
    _runs(root, "dtd/" + COOP.format(shots=1), [40, 50, 60])
    return root


def test_fewshot_cells_are_mean_and_population_std(fewshot_root):
    table = tables.fewshot_table(tables.scan(fewshot_root))
    assert table.headers == ["Method", "Dataset", "1-shot", "16-shot"]
    pets = _row(table, "CoOp", "OxfordPets")
    assert pets[3].mean == pytest.approx(92.0)
    assert pets[3].spread == pytest.approx(math.sqrt(14 / 3))  # ddof=0, as np.std
    assert pets[2] is None
    dtd = _row(table, "CoOp", "DTD")
    assert dtd[2].mean == pytest.approx(50.0) and dtd[2].spread == pytest.approx(math.sqrt(200 / 3))


def test_fewshot_average_is_mean_of_means_with_per_seed_spread(fewshot_root):
    table = tables.fewshot_table(tables.scan(fewshot_root))
    average = _row(table, "CoOp", "Average (2 datasets)")
    assert average[3].mean == pytest.approx(77.0)
    # per-seed averages over the two datasets: 75, 76.5, 79.5
    assert average[3].spread == pytest.approx(math.sqrt(3.5))
    assert average[2] is None  # 1 shot was run on one dataset only
    # the paper's 11-dataset average is not comparable with a 2-dataset one: no paper row
    assert not [row for row in table.rows if row[0] == "CoOp (paper)"]


def test_paper_averages_appear_only_beside_the_papers_datasets(tmp_path):
    root = str(tmp_path)
    stage = "base2new/{stage}/{dataset}/shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1"
    for dataset in names.FEWSHOT_DATASETS:
        _runs(root, f"{dataset}/" + COOP.format(shots=16), [70])
        _runs(root, stage.format(stage="train_base", dataset=dataset), [80])
        _runs(root, stage.format(stage="test_new", dataset=dataset), [60], trained=False)
    fewshot = tables.fewshot_table(tables.scan(root))
    assert _row(fewshot, "CoOp", "Average")[2].mean == pytest.approx(70.0)
    assert _row(fewshot, "CoOp (paper)", "Average")[2] == pytest.approx(79.01)
    assert _row(tables.base2new_table(tables.scan(root)), "Average", "CoCoOp")[5:] == [80.47, 71.69, 75.83]


def test_ci95_replaces_std(fewshot_root):
    table = tables.fewshot_table(tables.scan(fewshot_root), ci95=True)
    pets = _row(table, "CoOp", "OxfordPets")
    assert pets[3].spread == pytest.approx(1.96 * math.sqrt(14 / 3) / math.sqrt(3))
    assert tables.CI_NOTE in table.notes


@pytest.fixture
def base2new_root(tmp_path):
    root = str(tmp_path)
    stage = "base2new/{stage}/{dataset}/shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1"
    _runs(root, stage.format(stage="train_base", dataset="dtd"), [80, 82])
    _runs(root, stage.format(stage="test_new", dataset="dtd"), [50, 54], trained=False)
    _runs(root, stage.format(stage="train_base", dataset="oxford_pets"), [1, 1])
    _runs(root, stage.format(stage="test_base", dataset="oxford_pets"), [90, 94], trained=False)
    _runs(root, stage.format(stage="test_new", dataset="oxford_pets"), [96, 98], trained=False)
    return root


def test_base2new_harmonic_mean_from_mean_base_and_new(base2new_root):
    table = tables.base2new_table(tables.scan(base2new_root))
    dtd = _row(table, "DTD", "CoCoOp")
    assert (dtd[2].mean, dtd[3].mean) == (pytest.approx(81.0), pytest.approx(52.0))
    assert dtd[4] == pytest.approx(2 * 81 * 52 / (81 + 52))
    assert dtd[5:] == [77.01, 56.00, 64.85]  # published CoCoOp DTD
    pets = _row(table, "OxfordPets", "CoCoOp")
    assert pets[2].mean == pytest.approx(92.0)  # test_base wins over train_base's final test
    assert pets[4] == pytest.approx(2 * 92 * 97 / (92 + 97))


def test_base2new_average_h_is_h_of_the_averages(base2new_root):
    table = tables.base2new_table(tables.scan(base2new_root))
    average = _row(table, "Average (2 datasets)", "CoCoOp")
    assert average[2].mean == pytest.approx(86.5) and average[3].mean == pytest.approx(74.5)
    assert average[4] == pytest.approx(2 * 86.5 * 74.5 / 161)
    mean_of_h = (2 * 81 * 52 / 133 + 2 * 92 * 97 / 189) / 2
    assert abs(average[4] - mean_of_h) > 1.0
    assert average[5:] == [None, None, None]  # the paper's average is over 11 datasets, not these 2


def test_csv_splits_mean_and_std_columns(base2new_root):
    table = tables.base2new_table(tables.scan(base2new_root))
    rows = list(csv.DictReader(io.StringIO(table.to_csv())))
    dtd = next(row for row in rows if row["Dataset"] == "DTD")
    assert float(dtd["Base"]) == pytest.approx(81.0)
    assert float(dtd["Base_std"]) == pytest.approx(1.0)
    assert float(dtd["H"]) == pytest.approx(2 * 81 * 52 / 133, abs=1e-4)
    assert "| DTD" in table.to_markdown()


def test_cross_dataset_average_over_targets_excludes_source(tmp_path):
    root = str(tmp_path)
    _runs(root, "imagenet/CoCoOp/c4_16shots", [70, 72])
    _runs(root, "evaluation/CoCoOp/c4_16shots/caltech101", [90, 92], trained=False)
    _runs(root, "evaluation/CoCoOp/c4_16shots/dtd", [40, 44], trained=False)
    _runs(root, "evaluation/CoCoOp/c4_16shots/imagenet_a", [10, 10], trained=False)
    _runs(root, "imagenet/CoCoOp/c4_4shots", [1, 1])  # another shots setting: not the source of these tests
    table = tables.cross_dataset_table(tables.scan(root), datasets=["caltech101", "dtd"])
    assert table.headers == ["Method", "ImageNet", "Caltech101", "DTD", "Target avg"]
    row = _row(table, "CoCoOp")
    assert row[1].mean == pytest.approx(71.0)
    assert row[4].mean == pytest.approx(66.5) and row[4].spread == pytest.approx(1.5)
    dg = tables.dg_table(tables.scan(root))
    assert "(1/4 targets)" in _row(dg, "CoCoOp")[-1]


def test_two_configs_of_one_trainer_get_separate_labels(tmp_path):
    root = str(tmp_path)
    _runs(root, "dtd/CoCoOp/cfg_a_16shots", [50])
    _runs(root, "dtd/CoCoOp/cfg_b_16shots", [70])
    labels = [row[0] for row in tables.fewshot_table(tables.scan(root)).rows]
    assert "CoCoOp [cfg_a]" in labels and "CoCoOp [cfg_b]" in labels


def test_parse_test_res_coop_invocation(fewshot_root, capsys):
    directory = os.path.join(fewshot_root, "dtd", COOP.format(shots=16))
    assert parse_test_res.main([directory]) == 0
    out = capsys.readouterr().out
    assert f"Summary of directory: {directory}" in out
    assert "* accuracy: 62.00% +- 1.63%" in out


def test_parse_test_res_multi_exp_writes_csv(fewshot_root, tmp_path, capsys):
    out_file = str(tmp_path / "summary.csv")
    assert parse_test_res.main([fewshot_root, "--multi-exp", "--format", "csv", "--out", out_file]) == 0
    assert "Average performance" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out_file)))
    assert [row["Experiment"] for row in rows][-1] == "Average"
    assert float(rows[-1]["accuracy"]) == pytest.approx((50 + 62 + 92) / 3)


def test_parse_test_res_reports_missing_results(tmp_path):
    os.makedirs(tmp_path / "seed1")
    with pytest.raises(SystemExit, match="Nothing found"):
        parse_test_res.main([str(tmp_path)])


def test_plots_write_png_files(fewshot_root, base2new_root, tmp_path):
    curves = plots.fewshot_curves(tables.fewshot_table(tables.scan(fewshot_root)), str(tmp_path / "f.png"))
    bars = plots.base2new_bars(tables.base2new_table(tables.scan(base2new_root)), str(tmp_path / "b.png"))
    for path in (curves, bars):
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(path) > 5000


def test_stat_formats_single_runs_without_spread():
    assert str(Stat(71.234, 0.0, 1)) == "71.23"
    assert str(tables.summarize([70, 72])) == "71.00 +- 1.00"
    with pytest.raises(ValueError):
        tables.summarize([])
