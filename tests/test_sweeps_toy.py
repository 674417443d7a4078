"""The sweeps end to end on the toy world: each protocol family's bash scripts run the real train.py (and
cluster.py, meta_train.py) on the tiny toy world with a tiny CLIP, one seed, one shot, one epoch.

Each test checks CoOp's run folders and their results.json, that running the same scripts again starts no
job (``PYTHON=false`` would fail any job it started; the scripts' own rules run with ``TOOLS_PYTHON``), and
that ``run_protocol.py`` (what users run) finds every run of the protocol done in the scripts' folders and
writes the table with the expected rows.
tests/test_scripts.py checks the scripts' arguments and skip/resume rules cheaply with a stand-in train.py.

Runs shared between tests (module fixtures): the CoOp few-shot run on ToyShapes is also the source model of
domain generalization (CoOp's own flow: main.sh on the source, then eval.sh on the shifted domains), and one
GRAM meta-training (configs/gram/toy_tpt.yaml, with the test-time regulator) serves CoOp_GRAM and TPT_GRAM.
"""
import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

import parse_test_res
import run_protocol
from fileio.hashing import file_fingerprint
from helpers_clip import REPO, entry_point_env

pytestmark = pytest.mark.slow  # end to end: the real entry points

SEED = "1"
SHOTS = "1"
COOP_CFG = "tiny_ep10"  # configs/trainers/CoOp; NCTX 4 as in the config
COOP_VARIANT = "nctx4_cscFalse_ctpend"
FEWSHOT_SOURCE = "toy_shapes"  # few-shot dataset, and DG source (its shifted domains are the targets)
DG_TARGETS = ("toy_shapes_sketch", "toy_shapes_noisy")
XD_SOURCE, XD_TARGET = "toy_color_shapes", "toy_textures"  # cross-dataset: the broadest class set -> another
GRAM_CFG = "toy_tpt"  # configs/gram/toy_tpt.yaml: CoOp prompts + the test-time regulator TPT_GRAM needs
META_OPTS = ("TRAINER.GRAM.ITERS_PER_EPOCH 1 TRAINER.GRAM.META_BATCH 1 TRAINER.GRAM.VAL_TASKS 1 "
             "TRAINER.GRAM.SUPPORT_SIZE 4 TRAINER.GRAM.QUERY_SIZE 4 TRAINER.GRAM.TTA_ITERS 1 TRAINER.GRAM.TTA_IMAGES 2")
SKIP_SECONDS = 5.0  # a second sweep only reads folders: far less than one train.py start-up


@dataclass
class ToySweeps:
    """The toy world (``data``, the scripts' ``DATA``), the tiny CLIP and the output root all sweeps share."""

    data: str
    clip: str
    output: str

    @property
    def opts(self) -> str:
        return f"MODEL.BACKBONE.NAME {self.clip} OPTIM.MAX_EPOCH 1"

    def env(self, **extra: str) -> dict:
        base = {"DATA": self.data, "OUTPUT": self.output, "PYTHON": sys.executable, "TOOLS_PYTHON": sys.executable,
                "SEEDS": SEED, "OPTS": self.opts}
        return entry_point_env(**{**base, **extra})

    def sweep(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        """``bash scripts/<script> ARGS`` with ``env`` added to the sweep environment; must succeed."""
        completed = subprocess.run(["bash", os.path.join(REPO, "scripts", script), *args], env=self.env(**env),
                                   capture_output=True, text=True, timeout=300)
        assert completed.returncode == 0, f"{script} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        return completed

    def sweep_again_skips(self, script: str, *args: str, **env: str) -> None:
        """The same sweep again runs nothing: its job (one seed) is reported done, and no job starts."""
        started = time.time()
        # a started job would fail the sweep; the scripts still read their folder rules with the toolbox python
        completed = self.sweep(script, *args, PYTHON="false", TOOLS_PYTHON=sys.executable, **env)
        assert time.time() - started < SKIP_SECONDS
        assert completed.stdout.count("Skip this job") == 1 and "Run this job" not in completed.stdout

    def path(self, *parts: str) -> str:
        return os.path.join(self.output, *parts)

    def protocol(self, protocol: str, *args: str, methods: set) -> list:
        """``run_protocol.py PROTOCOL ARGS`` over the scripts' output: every job must already be done (the
        scripts and run_protocol agree on the folders). Returns the rows of the table's CSV, whose methods
        (published rows aside) must be ``methods``."""
        argv = [protocol, *args, "--root", self.data, "--output", self.output, "--seeds", SEED,
                "--python", sys.executable, "--gpus", "cpu", "--no-progress"]
        opts = ["--opts", *self.opts.split()]
        code, dry_run = printed_by(run_protocol.main, argv + ["--dry-run"] + opts)
        assert code == 0 and "[to run]" not in dry_run and "[done]" in dry_run, dry_run  # before any job starts
        code, text = printed_by(run_protocol.main, argv + opts)
        assert code == 0, text
        assert re.search(r"^(\d+) jobs: 0 ran, \1 already done, 0 failed", text, re.MULTILINE), text
        with open(self.path("tables", f"{protocol}.csv")) as handle:
            rows = list(csv.DictReader(handle))
        assert {row["Method"] for row in rows if not row["Method"].endswith("(paper)")} == methods, rows
        with open(self.path("tables", f"{protocol}.md")) as handle:
            markdown = handle.read()
        assert all(f"| {method} " in markdown for method in methods), markdown
        return rows


def printed_by(main, argv: list) -> tuple:
    """(exit code, stdout) of an entry point's ``main(argv)`` run in this process."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(argv)
    return code, printed.getvalue()


def read_result(folder: str, **expected) -> dict:
    """``folder/results.json`` (which must exist, with an accuracy in [0, 100] and the ``expected`` fields)."""
    with open(os.path.join(folder, "results.json")) as handle:
        record = json.load(handle)
    assert 0.0 <= record["accuracy"] <= 100.0, record
    assert {key: record[key] for key in expected} == expected, record
    return record


def shown(config: str) -> str:
    """The name tables give a toy dataset (its registry name, ``ToyShapes``), from its config name."""
    from datasets.toy_world import DATASET_SPECS

    return next(spec.name for spec in DATASET_SPECS.values() if spec.dataset_dir == config)


def row_of(rows: list, **cells: str) -> dict:
    matching = [row for row in rows if all(row[key] == value for key, value in cells.items())]
    assert len(matching) == 1, (cells, rows)
    return matching[0]


def close(cell: str, value: float) -> bool:
    return abs(float(cell) - value) < 1e-3


@pytest.fixture(scope="module")
def toy(tmp_path_factory, tiny_vit_checkpoint) -> ToySweeps:
    from datasets.toy_world import build_world

    root = tmp_path_factory.mktemp("sweeps_toy")
    world = build_world(str(root / "data"), seed=0, size="tiny", workers=1, progress=False)
    return ToySweeps(world.root, tiny_vit_checkpoint, str(root / "output"))


def coop_folder(toy: ToySweeps, dataset: str, trainer: str = "CoOp") -> str:
    return toy.path(dataset, trainer, f"{COOP_CFG}_{SHOTS}shots", COOP_VARIANT, f"seed{SEED}")


@pytest.fixture(scope="module")
def coop_fewshot(toy: ToySweeps) -> str:
    """scripts/coop/main.sh DATASET CFG CTP NCTX SHOTS CSC on ToyShapes; returns the run folder."""
    toy.sweep("coop/main.sh", FEWSHOT_SOURCE, COOP_CFG, "end", "4", SHOTS, "False")
    return coop_folder(toy, FEWSHOT_SOURCE)


@pytest.fixture(scope="module")
def meta_checkpoint(toy: ToySweeps) -> str:
    """scripts/gram/cluster.sh over the toy corpus, then scripts/gram/meta_train.sh; the meta checkpoint."""
    cluster_env = {"K": "8", "LEVELS": "2,4"}
    completed = toy.sweep("gram/cluster.sh", "toy_corpus/captions.tsv", toy.clip, **cluster_env)  # under DATA
    split = toy.path("gram", "split", "cmhc_k8", "split.json")
    assert os.path.isfile(split), completed.stdout
    toy.sweep_again_skips("gram/cluster.sh", "toy_corpus/captions.tsv", toy.clip, **cluster_env)
    toy.sweep("gram/meta_train.sh", GRAM_CFG, split, OPTS=f"{toy.opts} {META_OPTS}")
    checkpoint = toy.path("gram", GRAM_CFG, "meta_checkpoint.pth")
    assert os.path.isfile(checkpoint)
    toy.sweep_again_skips("gram/meta_train.sh", GRAM_CFG, split)
    return checkpoint


def test_fewshot_coop_main_then_parse_and_table(toy, coop_fewshot):
    assert os.path.isfile(os.path.join(coop_fewshot, "log.txt"))
    assert os.path.isfile(os.path.join(coop_fewshot, "prompt_learner", "model.pth.tar-1"))
    accuracy = read_result(coop_fewshot, trainer="CoOp", dataset="ToyShapes", shots=1, seed=1)["accuracy"]
    toy.sweep_again_skips("coop/main.sh", FEWSHOT_SOURCE, COOP_CFG, "end", "4", SHOTS, "False")

    code, printed = printed_by(parse_test_res.main, [os.path.dirname(coop_fewshot)])  # the folder of seed1, ...
    assert code == 0, printed
    mean = re.search(r"^\* accuracy: ([\d.]+)% \+- ([\d.]+)%$", printed, re.MULTILINE)
    assert mean and 0.0 <= float(mean.group(1)) <= 100.0 and abs(float(mean.group(1)) - accuracy) < 0.01

    rows = toy.protocol("fewshot", "--trainer", "CoOp", "--datasets", FEWSHOT_SOURCE, "--shots", SHOTS,
                        "--config", COOP_CFG, "--n-ctx", "4", methods={"CoOp"})
    assert close(row_of(rows, Method="CoOp", Dataset=shown(FEWSHOT_SOURCE))["1-shot"], accuracy)
    assert close(row_of(rows, Method="CoOp", Dataset="Average")["1-shot"], accuracy)
    assert os.path.isfile(toy.path("tables", "fewshot.png"))


def test_base2new_cocoop_train_and_test_scripts(toy):
    env = {"CFG": "tiny_c4_ep5_batch4", "SHOTS": SHOTS}
    toy.sweep("cocoop/base2new_train.sh", XD_SOURCE, SEED, **env)
    toy.sweep("cocoop/base2new_test.sh", XD_SOURCE, SEED, **env)
    folder = "{}/" + f"{XD_SOURCE}/shots_{SHOTS}/CoCoOp/tiny_c4_ep5_batch4/seed{SEED}"
    train_dir, test_dir = (toy.path("base2new", folder.format(stage)) for stage in ("train_base", "test_new"))
    base = read_result(train_dir, trainer="CoCoOp", dataset="ToyColorShapes", subsample="base")["accuracy"]
    new = read_result(test_dir, trainer="CoCoOp", dataset="ToyColorShapes", subsample="new")["accuracy"]
    assert os.path.isfile(os.path.join(train_dir, "prompt_learner", "model.pth.tar-1"))
    with open(os.path.join(test_dir, "log.txt")) as handle:
        assert "model.pth.tar-1" in handle.read()  # the test loaded the base-trained prompts (last epoch)
    toy.sweep_again_skips("cocoop/base2new_train.sh", XD_SOURCE, SEED, **env)
    toy.sweep_again_skips("cocoop/base2new_test.sh", XD_SOURCE, SEED, **env)

    rows = toy.protocol("base2new", "--trainer", "CoCoOp", "--datasets", XD_SOURCE, "--shots", SHOTS,
                        "--config", "tiny_c4_ep5_batch4", methods={"CoCoOp"})
    assert [row["Dataset"] for row in rows] == [shown(XD_SOURCE), "Average"]
    row = row_of(rows, Dataset=shown(XD_SOURCE), Method="CoCoOp")
    assert close(row["Base"], base) and close(row["New"], new)
    assert 0.0 <= float(row["H"]) <= 100.0
    assert close(row_of(rows, Dataset="Average", Method="CoCoOp")["New"], new)


def test_cross_dataset_maple_xd_train_and_xd_test(toy):
    env = {"CFG": "tiny_ep5_batch8_2ctx", "SHOTS": SHOTS, "SOURCE": XD_SOURCE}
    toy.sweep("maple/xd_train.sh", SEED, **env)
    toy.sweep("maple/xd_test.sh", XD_TARGET, SEED, **env)
    source_dir = toy.path(XD_SOURCE, "MaPLe", f"tiny_ep5_batch8_2ctx_{SHOTS}shots", f"seed{SEED}")
    target_dir = toy.path("evaluation", "MaPLe", f"tiny_ep5_batch8_2ctx_{SHOTS}shots", XD_TARGET, f"seed{SEED}")
    source = read_result(source_dir, trainer="MaPLe", dataset="ToyColorShapes", subsample="all")["accuracy"]
    target = read_result(target_dir, trainer="MaPLe", dataset="ToyTextures")["accuracy"]
    toy.sweep_again_skips("maple/xd_train.sh", SEED, **env)
    toy.sweep_again_skips("maple/xd_test.sh", XD_TARGET, SEED, **env)

    rows = toy.protocol("cross_dataset", "--trainer", "MaPLe", "--source", XD_SOURCE, "--datasets", XD_TARGET,
                        "--shots", SHOTS, "--config", "tiny_ep5_batch8_2ctx", methods={"MaPLe"})
    row = row_of(rows, Method="MaPLe")
    assert close(row[shown(XD_SOURCE)], source) and close(row[shown(XD_TARGET)], target) and close(row["Target avg"], target)


def test_domain_generalization_coop_eval_on_shifted_domains(toy, coop_fewshot):
    env = {"SOURCE": FEWSHOT_SOURCE, "SHOTS": SHOTS, "NCTX": "4"}
    targets = {}
    for dataset in DG_TARGETS:
        toy.sweep("coop/eval.sh", dataset, COOP_CFG, **env)
        folder = toy.path("evaluation", "CoOp", f"{COOP_CFG}_{SHOTS}shots", COOP_VARIANT, dataset, f"seed{SEED}")
        registry_name = "ToyShapes" + dataset.rsplit("_", 1)[1].capitalize()
        targets[dataset] = read_result(folder, trainer="CoOp", dataset=registry_name)["accuracy"]
        toy.sweep_again_skips("coop/eval.sh", dataset, COOP_CFG, **env)

    rows = toy.protocol("dg", "--trainer", "CoOp", "--source", FEWSHOT_SOURCE, "--datasets", *DG_TARGETS,
                        "--shots", SHOTS, "--config", COOP_CFG, "--n-ctx", "4", methods={"CoOp"})
    row = row_of(rows, Method="CoOp")
    assert close(row[shown(FEWSHOT_SOURCE)], read_result(coop_fewshot)["accuracy"])
    assert all(close(row[shown(dataset)], accuracy) for dataset, accuracy in targets.items())
    assert close(row["Target avg"], sum(targets.values()) / len(targets))


def test_gram_stages_then_coop_gram_main(toy, meta_checkpoint, coop_fewshot):
    env = {"GRAM_CFG": GRAM_CFG}  # where scripts/gram/meta_train.sh wrote it: OUTPUT/gram/GRAM_CFG
    toy.sweep("coop_gram/main.sh", FEWSHOT_SOURCE, COOP_CFG, "end", "4", SHOTS, "False", **env)
    folder = coop_folder(toy, FEWSHOT_SOURCE, "CoOp_GRAM")
    record = read_result(folder, trainer="CoOp_GRAM", dataset="ToyShapes", shots=1,
                         meta_ckpt_fingerprint=file_fingerprint(meta_checkpoint))  # the one meta_train.sh wrote
    toy.sweep_again_skips("coop_gram/main.sh", FEWSHOT_SOURCE, COOP_CFG, "end", "4", SHOTS, "False", **env)

    rows = toy.protocol("fewshot", "--trainer", "CoOp", "CoOp_GRAM", "--datasets", FEWSHOT_SOURCE, "--shots", SHOTS,
                        "--config", COOP_CFG, "--n-ctx", "4", "--meta-ckpt", meta_checkpoint,
                        methods={"CoOp", "CoOp_GRAM"})
    assert close(row_of(rows, Method="CoOp_GRAM", Dataset=shown(FEWSHOT_SOURCE))["1-shot"], record["accuracy"])
    assert close(row_of(rows, Method="CoOp", Dataset=shown(FEWSHOT_SOURCE))["1-shot"], read_result(coop_fewshot)["accuracy"])


def test_test_time_tpt_and_tpt_gram(toy, meta_checkpoint):
    dataset = DG_TARGETS[0]
    env = {"CFG": "tiny", "GRAM_CFG": GRAM_CFG}
    accuracy = {}
    runs = (("tpt/tpt.sh", "TPT", "none"), ("tpt/tpt_gram.sh", "TPT_GRAM", file_fingerprint(meta_checkpoint)))
    for script, trainer, meta in runs:
        toy.sweep(script, dataset, **env)
        folder = toy.path("tta", trainer, "tiny", dataset, f"seed{SEED}")
        accuracy[trainer] = read_result(folder, trainer=trainer, dataset="ToyShapesSketch",
                                        meta_ckpt_fingerprint=meta)["accuracy"]
        toy.sweep_again_skips(script, dataset, **env)

    rows = toy.protocol("tta", "--trainer", "TPT", "TPT_GRAM", "--source", FEWSHOT_SOURCE, "--datasets", dataset,
                        "--config", "tiny", "--meta-ckpt", meta_checkpoint, methods={"TPT", "TPT_GRAM"})
    for trainer, value in accuracy.items():
        assert close(row_of(rows, Method=trainer)[shown(dataset)], value)
