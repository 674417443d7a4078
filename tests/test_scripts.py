"""The bash sweeps: CoOp's folders and arguments, skip finished runs, resume missing seeds, agree with
run_protocol.py. Scripts run with PYTHON set to a stand-in train.py (tools/synthetic_runs.py)."""
import argparse
import json
import os
import shutil
import subprocess
import sys

import pytest

import run_protocol
from tools.protocols import RECIPES, CommandBuilder, Settings, recipe_for
from tools.synthetic_runs import log_text, write_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUB = f"{sys.executable} -m tools.synthetic_runs"
CONFIGS = {
    "CoOp": ["vit_b16_ep50", "vit_b16"],
    "CoCoOp": ["vit_b16_c4_ep10_batch1_ctxv1"],
    "MaPLe": ["vit_b16_c2_ep5_batch4_2ctx", "vit_b16_c2_ep5_batch4_2ctx_cross_datasets"],
    "VPT": ["vit_b16_c2_ep5_batch4_4"],
    "TPT": ["vit_b16"],
}


@pytest.fixture
def repo(tmp_path):
    """A copy of scripts/ with small trainer configs, so scripts and builder resolve the same files."""
    root = tmp_path / "repo"
    shutil.copytree(os.path.join(REPO, "scripts"), root / "scripts")
    for trainer, names in CONFIGS.items():
        for name in names:
            path = root / "configs" / "trainers" / trainer / f"{name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("OPTIM:\n  NAME: sgd\n  MAX_EPOCH: 7\n")
    (tmp_path / "data").mkdir()
    return root


def _bash(repo, script, *args, **env):
    record = repo / "record.jsonl"
    environment = dict(os.environ, DATA=str(repo.parent / "data"), PYTHON=STUB, PYTHONPATH=REPO,
                       STUB_RECORD=str(record))
    environment.update(env)
    completed = subprocess.run(["bash", str(repo / "scripts" / script), *args], env=environment,
                               capture_output=True, text=True, timeout=60)
    calls = [json.loads(line)["argv"] for line in record.read_text().splitlines()] if record.exists() else []
    record.unlink(missing_ok=True)
    return completed, calls


def _builder(repo, trainer, protocol, **settings):
    base = Settings(data_root=str(repo.parent / "data"), output_root="output", python=STUB, repo_root=str(repo))
    for key, value in settings.items():
        setattr(base, key, value)
    return CommandBuilder(recipe_for(trainer), base, protocol)


def _train_args(spec):
    return spec.argv[spec.argv.index("train.py"):]


def test_coop_main_skips_finished_and_resumes_missing_seeds(repo):
    folder = repo / "output/dtd/CoOp/vit_b16_ep50_4shots/nctx16_cscFalse_ctpend"
    write_run(str(folder / "seed1"), 60.0, with_json=True)
    (folder / "seed2").mkdir(parents=True)
    (folder / "seed2" / "log.txt").write_text(log_text(None, finished=False))  # interrupted run
    completed, calls = _bash(repo, "coop/main.sh", "dtd", "vit_b16_ep50", "end", "16", "4", "False")
    assert completed.returncode == 0, completed.stderr
    assert "Results are available in output/dtd/CoOp/vit_b16_ep50_4shots/nctx16_cscFalse_ctpend/seed1. Skip" \
        in completed.stdout
    assert [c[c.index("--seed") + 1] for c in calls] == ["2", "3"]
    builder = _builder(repo, "CoOp", "fewshot", config="vit_b16_ep50")
    assert calls == [_train_args(builder.fewshot("dtd", 4, seed)) for seed in (2, 3)]
    completed, calls = _bash(repo, "coop/main.sh", "dtd", "vit_b16_ep50", "end", "16", "4", "False")
    assert calls == [] and completed.stdout.count("Skip this job") == 3


@pytest.mark.parametrize(
    "script, args, env, trainer, protocol, build",
    [
        ("coop/eval.sh", ["imagenet_a", "vit_b16_ep50"], {"SEEDS": "2"}, "CoOp", "dg",
         lambda b: b.evaluation("imagenet_a", 16, 2)),
        ("cocoop/base2new_train.sh", ["dtd", "1"], {}, "CoCoOp", "base2new", lambda b: b.base2new_train("dtd", 16, 1)),
        ("cocoop/base2new_test.sh", ["dtd", "1"], {}, "CoCoOp", "base2new", lambda b: b.base2new_test("dtd", 16, 1)),
        ("maple/xd_train.sh", ["2"], {}, "MaPLe", "cross_dataset", lambda b: b.fewshot("imagenet", 16, 2)),
        ("maple/xd_test.sh", ["caltech101", "2"], {}, "MaPLe", "cross_dataset",
         lambda b: b.evaluation("caltech101", 16, 2)),
        ("maple/xd_test.sh", ["dtd", "1"], {"OPTS": "OPTIM.MAX_EPOCH 3"}, "MaPLe", "cross_dataset",
         lambda b: b.evaluation("dtd", 16, 1)),
        ("vpt/main.sh", ["eurosat", "2"], {"SEEDS": "3"}, "VPT", "fewshot", lambda b: b.fewshot("eurosat", 2, 3)),
        ("vpt/main.sh", ["eurosat", "2"], {"SEEDS": "1", "OPTS": "MODEL.BACKBONE.NAME tiny.pt OPTIM.MAX_EPOCH 2"},
         "VPT", "fewshot", lambda b: b.fewshot("eurosat", 2, 1)),
        ("zsclip/zeroshot.sh", ["dtd"], {}, "ZeroshotCLIP", "fewshot", lambda b: b.zeroshot("dtd")),
        ("tpt/tpt.sh", ["imagenet_r"], {"SEEDS": "1"}, "TPT", "tta", lambda b: b.test_time("imagenet_r", 1)),
    ],
)
def test_scripts_build_the_commands_of_run_protocol(repo, script, args, env, trainer, protocol, build):
    completed, calls = _bash(repo, script, *args, **env)
    assert completed.returncode == 0, completed.stderr
    builder = _builder(repo, trainer, protocol, extra_opts=env.get("OPTS", "").split())
    assert calls == [_train_args(build(builder))]


def test_base2new_test_loads_the_last_epoch_of_the_config(repo):
    _, calls = _bash(repo, "cocoop/base2new_test.sh", "dtd", "1")
    call = calls[0]
    assert call[call.index("--load-epoch") + 1] == "7"
    _, calls = _bash(repo, "cocoop/base2new_test.sh", "dtd", "2", OPTS="OPTIM.MAX_EPOCH 2")
    assert calls[0][calls[0].index("--load-epoch") + 1] == "2"  # the epoch count the run trained with
    assert call[call.index("--model-dir") + 1] == \
        "output/base2new/train_base/dtd/shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1/seed1"
    assert call[call.index("--output-dir") + 1].startswith("output/base2new/test_new/dtd/shots_16/CoCoOp/")


def test_gram_scripts_pass_the_meta_checkpoint(repo):
    completed, _ = _bash(repo, "coop_gram/main.sh", "dtd", "vit_b16_ep50", "end", "16", "1", "False", SEEDS="1")
    assert completed.returncode != 0 and "meta checkpoint output/gram/coop/meta_checkpoint.pth" in completed.stderr
    checkpoint = repo / "output/gram/coop/meta_checkpoint.pth"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"meta")
    completed, calls = _bash(repo, "coop_gram/main.sh", "dtd", "vit_b16_ep50", "end", "16", "1", "False", SEEDS="1")
    assert completed.returncode == 0, completed.stderr
    builder = _builder(repo, "CoOp_GRAM", "fewshot", config="vit_b16_ep50")
    assert calls == [_train_args(builder.fewshot("dtd", 1, 1))]
    assert calls[0][-2:] == ["TRAINER.GRAM.META_CKPT", "output/gram/coop/meta_checkpoint.pth"]
    assert "configs/trainers/CoOp/vit_b16_ep50.yaml" in calls[0]  # CoOp_GRAM falls back to CoOp's configs


@pytest.mark.parametrize("opts", ["", "MODEL.BACKBONE.NAME tiny.pt OPTIM.MAX_EPOCH 1"])
def test_meta_train_script_matches_run_protocol(repo, opts):
    completed, calls = _bash(repo, "gram/meta_train.sh", "coop", "splits/cc3m.json", OPTS=opts)
    assert completed.returncode == 0, completed.stderr
    args = argparse.Namespace(split_file="splits/cc3m.json", meta_config=None, python=STUB,
                              root=str(repo.parent / "data"), opts=opts.split())
    job = run_protocol._meta_train_job(args, "CoOp_GRAM", "output/gram/coop/meta_checkpoint.pth")
    assert calls == [job.command[job.command.index("meta_train.py"):]]
    assert calls[0][len(calls[0]) - len(opts.split()):] == opts.split()  # OPTS reach meta-training (tiny CLIP)


def test_missing_data_and_missing_arguments_are_explained(repo):
    completed, calls = _bash(repo, "cocoop/base2new_train.sh", "dtd", "1", DATA=str(repo / "nowhere"))
    assert completed.returncode != 0 and "DATA=" in completed.stderr and calls == []
    completed, calls = _bash(repo, "cocoop/base2new_train.sh", "dtd")
    assert completed.returncode != 0 and calls == []
    assert "usage: bash" in completed.stderr and "cocoop/base2new_train.sh DATASET SEED" in completed.stderr


def test_scripts_take_folders_and_the_done_rule_from_python(repo):
    """One source of truth: without the toolbox's Python the scripts stop, saying so, before running anything."""
    completed, calls = _bash(repo, "coop/main.sh", "dtd", "vit_b16", "end", "16", "1", "False",
                             TOOLS_PYTHON=str(repo / "no_python"))
    assert completed.returncode != 0 and calls == []
    assert completed.stderr.strip().splitlines()[-1] == (
        f"main.sh: cannot run {repo / 'no_python'} -m tools.protocols: export TOOLS_PYTHON=<the toolbox's python>")


def test_failed_run_is_rerun_by_the_next_sweep(repo):
    completed, calls = _bash(repo, "cocoop/main.sh", "dtd", "1", SEEDS="1 2 3", STUB_FAIL="seed2")
    assert completed.returncode != 0  # the sweep reports the failed seed ...
    assert [c[c.index("--seed") + 1] for c in calls] == ["1", "2", "3"]  # ... after running the others
    completed, calls = _bash(repo, "cocoop/main.sh", "dtd", "1", SEEDS="1 2 3")
    assert completed.returncode == 0
    assert [c[c.index("--seed") + 1] for c in calls] == ["2"]


def test_every_trainer_recipe_has_its_script_folder():
    for recipe in RECIPES.values():
        assert os.path.isdir(os.path.join(REPO, "scripts", recipe.script_dir)), recipe.trainer
