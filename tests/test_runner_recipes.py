"""run_protocol.py runs every registered trainer, lets a config file's values win over its own defaults, and
pairs each protocol's GRAM runs with a meta checkpoint made for that protocol's recipe."""
import os

import pytest

import run_protocol
import trainers  # noqa: F401  (registers the trainers)
from dassl.engine import TRAINER_REGISTRY
from tools.protocols import recipe_for


def toolbox_trainers() -> list:
    return sorted(name for name in TRAINER_REGISTRY.registered_names()
                  if TRAINER_REGISTRY.get(name).__module__.startswith("trainers."))


def dry_run(capsys, *argv) -> list:
    assert run_protocol.main([*argv, "--dry-run"]) == 0
    return [line.split("] ", 1)[1].split() for line in capsys.readouterr().out.splitlines() if line.startswith("[")]


def value_after(command: list, key: str) -> str:
    return command[command.index(key) + 1]


@pytest.mark.parametrize("trainer", toolbox_trainers())
def test_every_registered_trainer_runs_through_the_runner(trainer, tmp_path, capsys):
    recipe = recipe_for(trainer)
    protocol = recipe.protocols[0]
    argv = [protocol, "--trainer", trainer, "--datasets", "dtd", "--seeds", "1", "--root", str(tmp_path),
            "--output", str(tmp_path / "out")]
    if recipe.gram_cfg:
        argv += ["--split-file", str(tmp_path / "split.json")]
    commands = dry_run(capsys, *argv)
    runs = [c for c in commands if "train.py" in c]
    assert runs and all(value_after(c, "--trainer") == trainer for c in runs)
    assert all(os.path.isfile(os.path.join(run_protocol.REPO_ROOT, value_after(c, "--config-file"))) for c in runs)
    if recipe.gram_cfg:
        meta = [c for c in commands if "meta_train.py" in c]
        assert len(meta) == 1 and os.path.isfile(os.path.join(run_protocol.REPO_ROOT, value_after(meta[0], "--config-file")))


def test_a_config_value_wins_over_the_runner_default_unless_the_flag_is_typed(tmp_path, capsys):
    argv = ["fewshot", "--trainer", "CoOp", "--config", "toy_b2n", "--shots", "2", "--datasets", "dtd", "--seeds", "1",
            "--root", str(tmp_path), "--output", str(tmp_path / "out")]
    first = dry_run(capsys, *argv)[0]
    assert value_after(first, "TRAINER.COOP.N_CTX") == "4" and "nctx4_cscFalse_ctpend" in value_after(first, "--output-dir")
    typed = dry_run(capsys, *argv, "--n-ctx", "8")[0]
    assert value_after(typed, "TRAINER.COOP.N_CTX") == "8" and "nctx8" in value_after(typed, "--output-dir")


def test_each_protocol_gram_run_uses_a_meta_checkpoint_of_its_recipe(tmp_path, capsys):
    common = ["--trainer", "MaPLe_GRAM", "--datasets", "dtd", "--seeds", "1", "--root", str(tmp_path),
              "--output", str(tmp_path / "out"), "--split-file", str(tmp_path / "split.json")]
    depth = {}
    for protocol in ("base2new", "cross_dataset"):
        commands = dry_run(capsys, protocol, *common)
        meta = next(c for c in commands if "meta_train.py" in c)
        run = next(c for c in commands if "train.py" in c)
        meta_config = os.path.join(run_protocol.REPO_ROOT, value_after(meta, "--config-file"))
        trainer_config = os.path.join(run_protocol.REPO_ROOT, value_after(run, "--config-file"))
        assert os.path.dirname(value_after(run, "TRAINER.GRAM.META_CKPT")) == value_after(meta, "--output-dir")
        depth[protocol] = [read_depth(meta_config), read_depth(trainer_config)]
    assert depth == {"base2new": [9, 9], "cross_dataset": [3, 3]}


def read_depth(path: str) -> int:
    import yaml

    with open(path) as handle:
        return yaml.safe_load(handle)["TRAINER"]["MAPLE"]["PROMPT_DEPTH"]
