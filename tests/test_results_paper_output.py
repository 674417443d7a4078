"""Tables and figures for a paper: methods in the order the trainers were given, datasets by their table
name, no empty "(paper)" columns, LaTeX beside Markdown and CSV, a base-to-new figure whose y-axis shows
small differences and whose legend covers no bars; results.json's git_dirty; --gpus on a machine without
CUDA."""
import os
import subprocess

import pytest

import run_protocol
from tools import plots, protocol_card, runner, tables
from tools.synthetic_runs import write_run
from tools.tables import Stat, Table

STAGE = "base2new/{stage}/{dataset}/shots_16/{trainer}/{cfg}/seed{seed}"


def _base2new_runs(root, dataset, trainer, base, new, cfg="vit_b16", registry_name=None):
    """Two seeds of train_base (base accuracy) and test_new runs; ``registry_name`` adds results.json."""
    for seed, (b, n) in enumerate(zip(base, new), start=1):
        for stage, accuracy in (("train_base", b), ("test_new", n)):
            folder = os.path.join(root, STAGE.format(stage=stage, dataset=dataset, trainer=trainer, cfg=cfg,
                                                     seed=seed))
            write_run(folder, accuracy, with_json=registry_name is not None, trained=stage == "train_base",
                      fields={"dataset": registry_name} if registry_name else None)


@pytest.fixture
def toy_root(tmp_path):
    root = str(tmp_path)
    for trainer, base, new in (("ZeroshotCLIP", [88.75] * 2, [77.25] * 2), ("CoOp", [88.0, 88.8], [75.0, 78.0]),
                               ("CoOp_GRAM", [88.3, 88.5], [79.4, 79.9])):
        _base2new_runs(root, "toy_color_shapes", trainer, base, new, registry_name="ToyColorShapes")
    return root


def _methods(table: Table) -> list:
    return list(dict.fromkeys(row[1] for row in table.rows))


def test_methods_come_in_the_order_given(toy_root):
    runs = tables.scan(toy_root)
    assert _methods(tables.base2new_table(runs, ["ZeroshotCLIP", "CoOp", "CoOp_GRAM"])) == [
        "ZeroshotCLIP", "CoOp", "CoOp_GRAM"]
    assert _methods(tables.base2new_table(runs, ["CoOp_GRAM", "CoOp-GRAM", "ZeroshotCLIP", "CoOp"])) == [
        "CoOp_GRAM", "ZeroshotCLIP", "CoOp"]
    # without an order: each baseline, then its GRAM variant (not alphabetical, where ZeroshotCLIP comes last)
    assert _methods(tables.base2new_table(runs)) == ["ZeroshotCLIP", "CoOp", "CoOp_GRAM"]


def test_run_protocol_table_follows_the_command_line(toy_root, capsys):
    argv = ["base2new", "--trainer", "ZeroshotCLIP", "CoOp_GRAM", "CoOp", "--datasets", "toy_color_shapes",
            "--root", toy_root, "--output", toy_root, "--seeds", "1", "2", "--gpus", "cpu", "--no-progress"]
    args = run_protocol.parse_args(argv)
    assert run_protocol.write_results(args) == 0
    markdown = open(os.path.join(toy_root, "tables", "base2new.md")).read()
    assert markdown.index("| ZeroshotCLIP") < markdown.index("| CoOp_GRAM") < markdown.index("| CoOp  ")
    for suffix in ("md", "csv", "tex", "png"):
        assert os.path.isfile(os.path.join(toy_root, "tables", f"base2new.{suffix}"))


def test_datasets_by_table_name_and_no_empty_paper_columns(toy_root):
    toy = tables.base2new_table(tables.scan(toy_root))
    assert toy.headers == ["Dataset", "Method", "Base", "New", "H"]  # nothing published for the toy world
    assert {row[0] for row in toy.rows} == {"ToyColorShapes", "Average (1 datasets)"}
    _base2new_runs(toy_root, "dtd", "CoOp", [80, 82], [50, 54])  # logs only: the folder name maps to "DTD"
    real = tables.base2new_table(tables.scan(toy_root))
    assert real.headers[5:] == ["Base (paper)", "New (paper)", "H (paper)"]
    dtd = next(row for row in real.rows if row[:2] == ["DTD", "CoOp"])
    assert dtd[5:] == [79.44, 41.18, 54.24]  # CoOp's published DTD numbers


def test_latex_table_beside_markdown_and_csv(toy_root, tmp_path):
    table = tables.base2new_table(tables.scan(toy_root), ["CoOp", "CoOp_GRAM"])
    written = tables.write_table(table, str(tmp_path / "b2n"))
    assert [os.path.splitext(path)[1] for path in written] == [".md", ".csv", ".tex"]
    latex = open(tmp_path / "b2n.tex").read()
    assert "\\begin{tabular}{llrrr}" in latex and "\\toprule" in latex and "\\bottomrule" in latex
    assert "ToyColorShapes & CoOp & 88.40 $\\pm$ 0.40 & 76.50 $\\pm$ 1.50 & 82.02 \\\\" in latex
    body = latex[latex.index("\\begin"):]
    assert "CoOp\\_GRAM" in body and "CoOp_GRAM" not in body
    assert latex.index("\\midrule\nAverage") > latex.index("ToyColorShapes & CoOp\\_GRAM")


def _bars_table(values: dict) -> Table:
    table = Table("b2n", ["Dataset", "Method", "Base", "New", "H"])
    for method, (base, new, harmonic) in values.items():
        table.rows.append(["ToyColorShapes", method, Stat(base, 0.5, 3), Stat(new, 0.5, 3), harmonic])
    return table


def test_base2new_figure_shows_small_differences_and_its_legend_covers_no_bars():
    table = _bars_table({"ZeroshotCLIP": (88.75, 77.25, 82.60), "CoOp": (88.42, 76.50, 82.03),
                         "CoOp_GRAM": (88.42, 79.67, 83.81)})
    figure = plots.base2new_figure(table)
    figure.canvas.draw()
    axis = figure.axes[0]
    low, high = axis.get_ylim()
    assert low > 50 and (83.81 - 82.03) / (high - low) > 0.05  # 1.8 points are a visible part of the axis
    renderer = figure.canvas.get_renderer()
    legend = figure.legends[0].get_window_extent(renderer)
    bars = [patch.get_window_extent(renderer) for patch in axis.patches]
    assert len(bars) == 9 and not any(legend.overlaps(bar) for bar in bars)
    assert not legend.overlaps(axis.get_window_extent(renderer))
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["ZeroshotCLIP", "CoOp", "CoOp_GRAM"]


def test_git_dirty_tells_uncommitted_changes(tmp_path):
    assert protocol_card.git_dirty(str(tmp_path)) is None  # not a checkout
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(git + ["init", "-q"], check=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    subprocess.run(git + ["add", "a.py"], check=True)
    subprocess.run(git + ["commit", "-qm", "a"], check=True)
    (tmp_path / "untracked.txt").write_text("")
    assert protocol_card.git_dirty(str(tmp_path)) is False
    (tmp_path / "a.py").write_text("x = 2\n")
    assert protocol_card.git_dirty(str(tmp_path)) is True
    assert "git_dirty" in protocol_card.RECORD_KEYS


def test_gpus_without_cuda_is_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "visible_gpu_count", lambda: 0)
    argv = ["base2new", "--trainer", "CoOp", "--datasets", "dtd", "--root", str(tmp_path), "--output",
            str(tmp_path / "out"), "--gpus", "0", "--no-progress"]
    assert run_protocol.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("run_protocol.py: error: --gpus 0: this machine has no CUDA device (torch.cuda.is_available() "
                   "is False); use --gpus cpu to run on the CPU")
    assert not os.path.exists(tmp_path / "out")  # nothing ran
    assert runner.resolve_slots("auto") == ["cpu0"]


def test_gpus_auto_and_ids_beyond_the_visible_gpus(monkeypatch):
    monkeypatch.setattr(runner, "visible_gpu_count", lambda: 2)
    assert runner.resolve_slots("auto") == ["0", "1"]
    assert runner.resolve_slots("1") == ["1"]
    with pytest.raises(ValueError, match=r"--gpus 0,3: no GPU 3 here \(2 visible: 0..1\)"):
        runner.resolve_slots("0,3")


def test_run_protocol_takes_the_scripts_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA", str(tmp_path))
    monkeypatch.setenv("OUTPUT", "out/elsewhere")
    monkeypatch.setenv("SEEDS", "4 5")
    monkeypatch.setenv("PYTHON", "python")
    monkeypatch.setenv("OPTS", "MODEL.BACKBONE.NAME /tmp/clip.pt OPTIM.MAX_EPOCH 1")
    args = run_protocol.parse_args(["fewshot", "--trainer", "CoOp"])
    assert (args.root, args.output, args.seeds, args.python) == (str(tmp_path), "out/elsewhere", [4, 5], "python")
    assert args.opts == ["MODEL.BACKBONE.NAME", "/tmp/clip.pt", "OPTIM.MAX_EPOCH", "1"]
    assert run_protocol.parse_args(["fewshot", "--trainer", "CoOp", "--seeds", "1", "--opts"]).opts == []
    assert run_protocol.persistent_workers(args, ["cpu0"]) and not run_protocol.persistent_workers(args, ["0"])
    wrapped = run_protocol.parse_args(["fewshot", "--trainer", "CoOp", "--python", "python -m tools.synthetic_runs"])
    assert not run_protocol.persistent_workers(wrapped, ["cpu0"])
    monkeypatch.setenv("SEEDS", "one")
    with pytest.raises(SystemExit, match="SEEDS='one' must be seed numbers"):
        run_protocol.build_parser()
