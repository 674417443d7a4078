"""train.py: CoOp's command line, one-line errors for bad input, results.json next to log.txt."""
import json
import os
import subprocess
import sys

import pytest

from helpers_clip import REPO

TINY_COOP = "configs/trainers/CoOp/tiny_ep10.yaml"


def run_main(argv):
    import train

    train.main(train.build_parser().parse_args(argv))


def coop_argv(root, output, backbone, *opts):
    return ["--root", root, "--trainer", "CoOp", "--config-file", os.path.join(REPO, TINY_COOP),
            "--output-dir", output, "--seed", "1", "DATASET.NAME", "ClipColorFixture",
            "MODEL.BACKBONE.NAME", backbone, *opts]


def test_unknown_trainer_is_one_line_listing_the_registered_ones(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "third_party"), REPO]))
    result = subprocess.run([sys.executable, os.path.join(REPO, "train.py"), "--trainer", "CoOOp",
                             "--output-dir", str(tmp_path)], capture_output=True, text=True, env=env, cwd=REPO)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: unknown trainer 'CoOOp'") and "CoOp_GRAM" in last
    assert "Traceback" not in result.stderr


def test_hyphenated_trainer_name_is_accepted():
    from tools.cli import canonical_trainer_name

    import trainers  # noqa: F401

    assert canonical_trainer_name("CoOp-GRAM") == "CoOp_GRAM"


def test_unknown_config_key_names_the_key(tmp_path, dataset_root, tiny_vit_checkpoint):
    from tools.cli import UsageError

    with pytest.raises(UsageError, match="TRAINER.COOP.N_CTXX"):
        run_main(coop_argv(dataset_root, str(tmp_path), tiny_vit_checkpoint, "TRAINER.COOP.N_CTXX", "4"))


def test_output_dir_that_cannot_be_created_is_named(tmp_path, dataset_root, tiny_vit_checkpoint):
    from tools.cli import UsageError

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    target = str(blocker / "run")
    with pytest.raises(UsageError, match=f"cannot create output dir {target}"):
        run_main(coop_argv(dataset_root, target, tiny_vit_checkpoint))


def test_train_writes_results_json_and_eval_only_reproduces_it(tmp_path, dataset_root, tiny_vit_checkpoint):
    output = str(tmp_path / "run")
    run_main(coop_argv(dataset_root, output, tiny_vit_checkpoint, "OPTIM.MAX_EPOCH", "2"))
    record = json.load(open(os.path.join(output, "results.json")))
    assert record["trainer"] == "CoOp" and 0 <= record["accuracy"] <= 100
    assert "accuracy" in open(os.path.join(output, "log.txt")).read()
    evaluation = str(tmp_path / "eval")
    run_main(["--eval-only", "--model-dir", output, "--load-epoch", "2"]
             + coop_argv(dataset_root, evaluation, tiny_vit_checkpoint))
    assert json.load(open(os.path.join(evaluation, "results.json")))["accuracy"] == record["accuracy"]


def test_checkpoint_of_another_model_is_one_line(tmp_path, dataset_root, tiny_vit_checkpoint):
    from tools.cli import UsageError

    output = str(tmp_path / "run")
    run_main(coop_argv(dataset_root, output, tiny_vit_checkpoint, "OPTIM.MAX_EPOCH", "1"))
    with pytest.raises(UsageError, match="prompt_learner"):
        run_main(["--eval-only", "--model-dir", output, "--load-epoch", "1"]
                 + coop_argv(dataset_root, str(tmp_path / "eval"), tiny_vit_checkpoint, "TRAINER.COOP.N_CTX", "6"))


@pytest.mark.parametrize("entry_point", ["train.py", "meta_train.py", "cluster.py", "make_toy_world.py"])
def test_help_is_answered_before_torch_is_imported(entry_point):
    code = (f"import runpy, sys\nsys.argv = [{entry_point!r}, '--help']\n"
            f"try:\n    runpy.run_path({entry_point!r}, run_name='__main__')\n"
            "except SystemExit:\n    print('loaded:', sorted(m for m in ('torch', 'dassl', 'trainers') if m in sys.modules))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "third_party"), REPO]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert "--output-dir" in result.stdout or "--root" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "loaded: []"


def test_make_toy_world_lists_the_toy_worlds_sizes_and_resolutions():
    import make_toy_world
    from datasets.toy_world import WORLD_SIZES
    from datasets.toy_world.world import RESOLUTIONS

    assert sorted(make_toy_world.SIZES) == sorted(WORLD_SIZES)
    assert sorted(make_toy_world.RESOLUTION_CHOICES) == sorted(RESOLUTIONS)
