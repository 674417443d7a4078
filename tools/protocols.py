"""The evaluation protocols: output-folder scheme, trainer recipes and the train.py command of each run.

Folders follow CoOp's scripts (relative to the output root, ``output/`` by default):

- few-shot (and the ImageNet training of cross-dataset / DG), CoOp ``scripts/coop/main.sh``:
  ``<dataset>/<trainer>/<cfg>_<shots>shots[/nctx<N>_csc<C>_ctp<P>]/seed<k>``
  (the ``nctx..`` level only for CoOp-style trainers);
- base-to-new, CoCoOp ``base2new_train.sh`` / ``base2new_test.sh``:
  ``base2new/train_base/<dataset>/shots_<shots>/<trainer>/<cfg>/seed<k>`` and ``base2new/test_new/...``;
- cross-dataset and domain generalization targets, CoCoOp ``xd_test.sh`` / CoOp ``eval.sh``:
  ``evaluation/<trainer>/<cfg>_<shots>shots[/nctx..]/<dataset>/seed<k>``;
- zero-shot CLIP, CoOp ``zeroshot.sh``: ``<trainer>/<cfg>/<dataset>`` (no seed);
- test-time tuning: ``tta/<trainer>/<cfg>/<dataset>/seed<k>``.

``scripts/common.sh`` builds the same folders and the same ``train.py`` argument lists (a test runs both and
compares them). A test run loads the last-epoch checkpoint: ``--load-epoch`` is ``OPTIM.MAX_EPOCH`` (from the
extra options when they set it, else from the trainer config) instead of being typed per script.
"""
import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Optional

import yaml

from fileio.stage_files import META_CHECKPOINT_NAME
from tools import names
from tools.results import is_run_done

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESERVED_TOP = ("base2new", "evaluation", "tta", "gram")

FOLDERS = {
    "fewshot": "{dataset}/{trainer}/{cfg}_{shots}shots{variant}/seed{seed}",
    "base2new": "base2new/{stage}/{dataset}/shots_{shots}/{trainer}/{cfg}/seed{seed}",
    "evaluation": "evaluation/{trainer}/{cfg}_{shots}shots{variant}/{dataset}/seed{seed}",
    "zeroshot": "{trainer}/{cfg}/{dataset}",
    "tta": "tta/{trainer}/{cfg}/{dataset}/seed{seed}",
}
META_FOLDER = "gram/{cfg}"  # meta_train.sh's output for a GRAM config, where the GRAM runs find the meta checkpoint
_FIELD_PATTERNS = {
    "shots": r"\d+",
    "seed": r"\d+",
    "variant": r"(?:/[^/]+)?",
    "stage": r"train_base|test_base|test_new",
    "cfg": r"[^/]+?",
}
_RESERVED = "(?!(?:" + "|".join(RESERVED_TOP) + ")/)"


def _folder_regex(template: str) -> re.Pattern:
    pattern = re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
    pattern = re.sub(
        r"{(\w+)}", lambda m: f"(?P<{m.group(1)}>{_FIELD_PATTERNS.get(m.group(1), '[^/]+')})", pattern
    )
    return re.compile("^" + (_RESERVED if template.startswith("{") else "") + pattern + "$")


FOLDER_PATTERNS = {kind: _folder_regex(template) for kind, template in FOLDERS.items()}


def match_folder(kind: str, relative_path: str) -> Optional[dict]:
    """The fields of a run folder path (relative to the output root) under scheme ``kind``, or None."""
    found = FOLDER_PATTERNS[kind].match(relative_path.replace(os.sep, "/"))
    if found is None:
        return None
    fields = found.groupdict()
    fields["variant"] = (fields.get("variant") or "").lstrip("/")
    return fields


@dataclass(frozen=True)
class Recipe:
    """How the scripts run one trainer: its script folder, default configs, and option style."""

    trainer: str
    script_dir: str
    configs: dict
    coop_options: bool = False
    trains: bool = True
    gram_cfg: str = ""  # configs/gram/<name>.yaml of the meta checkpoint its GRAM variant trains from
    extra_config_dirs: tuple = ()
    xd_gram_cfg: str = ""  # the meta config of the cross-dataset / DG recipe, when it differs (MaPLe: depth 3)

    @property
    def config_dirs(self) -> tuple:
        base = self.trainer[: -len("_GRAM")] if self.trainer.endswith("_GRAM") else self.trainer
        return tuple(dict.fromkeys((self.trainer, base) + self.extra_config_dirs))

    @property
    def protocols(self) -> list[str]:
        """The protocols this trainer runs."""
        expanded = {"xd": ["cross_dataset", "dg"]}
        return [p for key in self.configs for p in expanded.get(key, [key])]

    def gram_config(self, protocol: str) -> str:
        """The GRAM meta config whose checkpoint fits this protocol's recipe ("" if not a GRAM trainer)."""
        return (self.xd_gram_cfg or self.gram_cfg) if protocol in ("cross_dataset", "dg") else self.gram_cfg

    def default_config(self, protocol: str) -> str:
        if protocol not in self.protocols:
            raise ValueError(f"trainer {self.trainer} has no {protocol} protocol (it runs: {', '.join(self.protocols)})")
        return self.configs["xd" if protocol in ("cross_dataset", "dg") else protocol]


def _gram(recipe: Recipe, gram_cfg: str, xd_gram_cfg: str = "") -> Recipe:
    return Recipe(
        trainer=recipe.trainer + "_GRAM",
        script_dir=recipe.script_dir + "_gram",
        configs=recipe.configs,
        coop_options=recipe.coop_options,
        trains=recipe.trains,
        gram_cfg=gram_cfg,
        xd_gram_cfg=xd_gram_cfg,
    )


_COOP = Recipe("CoOp", "coop", {k: "vit_b16_ep50" for k in ("fewshot", "base2new", "xd")}, coop_options=True)
_COCOOP = Recipe("CoCoOp", "cocoop", {k: "vit_b16_c4_ep10_batch1_ctxv1" for k in ("fewshot", "base2new", "xd")})
_VPT = Recipe("VPT", "vpt", {k: "vit_b16_c2_ep5_batch4_4" for k in ("fewshot", "base2new", "xd")})
_MAPLE = Recipe(
    "MaPLe",
    "maple",
    {
        "fewshot": "vit_b16_c2_ep5_batch4_2ctx",
        "base2new": "vit_b16_c2_ep5_batch4_2ctx",
        "xd": "vit_b16_c2_ep5_batch4_2ctx_cross_datasets",
    },
)
_KGCOOP = Recipe("KgCoOp", "kgcoop", {k: "vit_b16_ep100_ctxv1" for k in ("fewshot", "base2new", "xd")},
                 coop_options=True)
_PROMETAR = Recipe("ProMetaR", "prometar", {k: "vit_b16_c2_ep10_batch4_4+4ctx" for k in ("fewshot", "base2new", "xd")})
_ZSCLIP = Recipe(
    "ZeroshotCLIP", "zsclip", {k: "vit_b16" for k in ("fewshot", "base2new", "xd", "tta")}, trains=False,
    extra_config_dirs=("CoOp",),
)
_TPT = Recipe("TPT", "tpt", {"tta": "vit_b16"}, trains=False)

RECIPES = {
    recipe.trainer: recipe
    for recipe in (
        _ZSCLIP, _COOP, _COCOOP, _VPT, _MAPLE, _PROMETAR, _KGCOOP, _TPT,
        _gram(_COOP, "coop"), _gram(_COCOOP, "cocoop"), _gram(_VPT, "vpt"),
        _gram(_MAPLE, "maple", xd_gram_cfg="maple_cross_datasets"), _gram(_PROMETAR, "prometar"),
        _gram(_KGCOOP, "kgcoop"),
        Recipe("TPT_GRAM", "tpt", {"tta": "vit_b16"}, trains=False, gram_cfg="tpt", extra_config_dirs=("TPT",)),
    )
}


def recipe_for(trainer: str) -> Recipe:
    """The recipe of a trainer name; ValueError listing the known names otherwise."""
    if trainer not in RECIPES:
        raise ValueError(f"unknown trainer {trainer!r}: expected one of {', '.join(RECIPES)}")
    return RECIPES[trainer]


@dataclass
class Settings:
    """What a protocol command line fixes for all its runs."""

    data_root: str
    output_root: str = "output"
    python: str = "python"  # interpreter, with options if any (split like the shell splits $PYTHON)
    repo_root: str = REPO_ROOT
    config: Optional[str] = None
    load_epoch: Optional[int] = None
    n_ctx: Optional[int] = None  # CoOp-style options: None = the trainer config's value, else CoOp's default
    csc: Optional[bool] = None
    class_token_position: Optional[str] = None
    meta_ckpt: Optional[str] = None
    source: str = names.SOURCE_DATASET
    extra_opts: list = field(default_factory=list)


@dataclass
class RunSpec:
    """One train.py run: its output folder, its arguments, and the runs it needs first."""

    name: str
    output_dir: str
    argv: list
    after: list = field(default_factory=list)
    meta_ckpt: Optional[str] = None


def trainer_config_path(recipe: Recipe, cfg: str, repo_root: str) -> str:
    """``configs/trainers/<dir>/<cfg>.yaml`` in the first of the recipe's config folders that has it."""
    candidates = [f"configs/trainers/{directory}/{cfg}.yaml" for directory in recipe.config_dirs]
    for candidate in candidates:
        if os.path.isfile(os.path.join(repo_root, candidate)):
            return candidate
    return candidates[0]


def read_config(path: str) -> dict:
    """A trainer config as a dict ({} when the file does not exist yet: the run then reports it)."""
    if not os.path.isfile(path):
        return {}
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def config_max_epoch(path: str) -> int:
    """``OPTIM.MAX_EPOCH`` of a trainer config: the epoch whose checkpoint a test run loads."""
    try:
        with open(path) as handle:
            config = yaml.safe_load(handle) or {}
    except OSError as error:
        raise FileNotFoundError(f"{path}: trainer config not found ({error.strerror})") from None
    try:
        return int(config["OPTIM"]["MAX_EPOCH"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: no OPTIM.MAX_EPOCH to load the last checkpoint from; pass --load-epoch") from None


class CommandBuilder:
    """Builds the run specs of one trainer, with the arguments in the order ``scripts/common.sh`` uses."""

    def __init__(self, recipe: Recipe, settings: Settings, protocol: str):
        self.recipe = recipe
        self.settings = settings
        default = recipe.default_config(protocol)  # also refuses a protocol the trainer does not run
        self.cfg = settings.config or default
        self.config_file = trainer_config_path(recipe, self.cfg, settings.repo_root)
        self.meta_ckpt = None
        self.gram_cfg = recipe.gram_config(protocol)
        if self.gram_cfg:
            self.meta_ckpt = settings.meta_ckpt or os.path.join(
                settings.output_root, META_FOLDER.format(cfg=self.gram_cfg), META_CHECKPOINT_NAME
            )
        self.coop_values = self._coop_values() if recipe.coop_options else None

    def _coop_values(self) -> tuple:
        """``(n_ctx, csc, class token position)``: each as typed on the command line, else the trainer
        config's ``TRAINER.COOP`` value, else CoOp's default (16, False, end)."""
        s = self.settings
        section = read_config(os.path.join(s.repo_root, self.config_file)).get("TRAINER", {}) or {}
        section = section.get("COOP", {}) or {}
        typed = (s.n_ctx, s.csc, s.class_token_position)
        keys, defaults = ("N_CTX", "CSC", "CLASS_TOKEN_POSITION"), (16, False, "end")
        return tuple(value if value is not None else section.get(key, default)
                     for value, key, default in zip(typed, keys, defaults))

    @property
    def variant(self) -> str:
        if not self.coop_values:
            return ""
        n_ctx, csc, position = self.coop_values
        return f"nctx{n_ctx}_csc{csc}_ctp{position}"

    def _trainer_opts(self) -> list:
        if not self.coop_values:
            return []
        n_ctx, csc, position = self.coop_values
        return ["TRAINER.COOP.N_CTX", str(n_ctx), "TRAINER.COOP.CSC", str(csc),
                "TRAINER.COOP.CLASS_TOKEN_POSITION", position]

    def _load_epoch(self) -> str:
        """``--load-epoch``: as given, else OPTIM.MAX_EPOCH from the extra options, else from the config."""
        if self.settings.load_epoch is not None:
            return str(self.settings.load_epoch)
        opts = self.settings.extra_opts
        overrides = [value for key, value in zip(opts[::2], opts[1::2]) if key == "OPTIM.MAX_EPOCH"]
        if overrides:
            return overrides[-1]
        return str(config_max_epoch(os.path.join(self.settings.repo_root, self.config_file)))

    def _folder(self, kind: str, **fields) -> str:
        variant = f"/{self.variant}" if self.variant else ""
        relative = FOLDERS[kind].format(trainer=self.recipe.trainer, cfg=self.cfg, variant=variant, **fields)
        return os.path.join(self.settings.output_root, relative)

    def _spec(self, output_dir: str, dataset: str, seed: Optional[int], tail: list, after=()) -> RunSpec:
        s = self.settings
        argv = shlex.split(s.python) + ["train.py", "--root", s.data_root]
        if seed is not None:
            argv += ["--seed", str(seed)]
        argv += [
            "--trainer", self.recipe.trainer,
            "--dataset-config-file", f"configs/datasets/{dataset}.yaml",
            "--config-file", self.config_file,
            "--output-dir", output_dir,
        ]
        argv += tail + list(s.extra_opts)
        if self.meta_ckpt:
            argv += ["TRAINER.GRAM.META_CKPT", self.meta_ckpt]
        return RunSpec(output_dir, output_dir, argv, list(after), self.meta_ckpt)

    def _eval_tail(self, model_dir: str) -> list:
        return ["--model-dir", model_dir, "--load-epoch", self._load_epoch(), "--eval-only"]

    def fewshot(self, dataset: str, shots: int, seed: int) -> RunSpec:
        """CoOp main.sh / CoCoOp xd_train.sh: train on ``shots`` shots of all classes, then test."""
        folder = self._folder("fewshot", dataset=dataset, shots=shots, seed=seed)
        return self._spec(folder, dataset, seed, self._trainer_opts() + ["DATASET.NUM_SHOTS", str(shots)])

    def base2new_train(self, dataset: str, shots: int, seed: int) -> RunSpec:
        folder = self._folder("base2new", stage="train_base", dataset=dataset, shots=shots, seed=seed)
        tail = self._trainer_opts() + ["DATASET.NUM_SHOTS", str(shots), "DATASET.SUBSAMPLE_CLASSES", "base"]
        return self._spec(folder, dataset, seed, tail)

    def base2new_test(self, dataset: str, shots: int, seed: int, subsample: str = "new") -> RunSpec:
        train = self.base2new_train(dataset, shots, seed)
        folder = self._folder("base2new", stage=f"test_{subsample}", dataset=dataset, shots=shots, seed=seed)
        tail = self._eval_tail(train.output_dir) + self._trainer_opts()
        tail += ["DATASET.NUM_SHOTS", str(shots), "DATASET.SUBSAMPLE_CLASSES", subsample]
        return self._spec(folder, dataset, seed, tail, after=[train.name])

    def base2new_zeroshot(self, dataset: str, subsample: str) -> RunSpec:
        """Zero-shot CLIP on the base or new half of the classes (its seed-independent base2new row)."""
        folder = self._folder("base2new", stage=f"test_{subsample}", dataset=dataset, shots=0, seed=1)
        return self._spec(folder, dataset, 1, ["--eval-only", "DATASET.SUBSAMPLE_CLASSES", subsample])

    def evaluation(self, dataset: str, shots: int, seed: int) -> RunSpec:
        """CoCoOp xd_test.sh / CoOp eval.sh: test the ImageNet-trained prompts on another dataset."""
        train = self.fewshot(self.settings.source, shots, seed)
        folder = self._folder("evaluation", dataset=dataset, shots=shots, seed=seed)
        tail = self._eval_tail(train.output_dir) + self._trainer_opts()
        return self._spec(folder, dataset, seed, tail, after=[train.name])

    def zeroshot(self, dataset: str) -> RunSpec:
        """CoOp zeroshot.sh: evaluate CLIP with hand-written prompts (no seed)."""
        return self._spec(self._folder("zeroshot", dataset=dataset), dataset, None, ["--eval-only"])

    def test_time(self, dataset: str, seed: int) -> RunSpec:
        """scripts/tpt/tpt.sh: tune on each test image, then predict it."""
        return self._spec(self._folder("tta", dataset=dataset, seed=seed), dataset, seed, ["--eval-only"])


PROTOCOLS = ("fewshot", "base2new", "cross_dataset", "dg", "tta")
DEFAULT_DATASETS = {
    "fewshot": names.FEWSHOT_DATASETS,
    "base2new": names.BASE2NEW_DATASETS,
    "cross_dataset": names.CROSS_DATASET_TARGETS,
    "dg": names.DG_TARGETS,
    "tta": (names.SOURCE_DATASET,) + names.DG_TARGETS,
}


def build_runs(
    protocol: str, trainer: str, settings: Settings, datasets, seeds, shots_list
) -> list[RunSpec]:
    """Every run of ``protocol`` for one trainer, training runs before the tests that load them.

    ``datasets`` are targets for cross_dataset / dg (the source is ``settings.source``, ImageNet by default).
    Trainers that do not train (ZeroshotCLIP) run ``zeroshot`` once per dataset, the source included for the
    transfer protocols.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    builder = CommandBuilder(recipe_for(trainer), settings, protocol)
    transfer = protocol in ("cross_dataset", "dg")
    if protocol == "tta":
        if builder.recipe.trainer == "ZeroshotCLIP":
            return [builder.zeroshot(d) for d in datasets]
        return [builder.test_time(d, seed) for d in datasets for seed in seeds]
    if not builder.recipe.trains and protocol == "base2new":
        return [builder.base2new_zeroshot(d, subsample) for d in datasets for subsample in ("base", "new")]
    if not builder.recipe.trains:
        sources = (settings.source,) if transfer else ()
        return [builder.zeroshot(d) for d in dict.fromkeys(sources + tuple(datasets))]
    runs = []
    for shots in shots_list:
        for seed in seeds:
            if transfer:
                runs.append(builder.fewshot(settings.source, shots, seed))
                runs += [builder.evaluation(d, shots, seed) for d in datasets]
            elif protocol == "fewshot":
                runs += [builder.fewshot(d, shots, seed) for d in datasets]
            else:
                for dataset in datasets:
                    runs += [builder.base2new_train(dataset, shots, seed), builder.base2new_test(dataset, shots, seed)]
    return runs


def shell_definitions() -> str:
    """What ``scripts/common.sh`` takes from here: the folder templates (``FOLDERS`` and ``meta``, the
    ``META_FOLDER``) and the meta-checkpoint file name."""
    templates = dict(FOLDERS, meta=META_FOLDER)
    folders = " ".join(f"[{kind}]={shlex.quote(template)}" for kind, template in templates.items())
    return f"declare -A FOLDERS=({folders})\nMETA_CKPT_NAME={shlex.quote(META_CHECKPOINT_NAME)}\n"


def main(argv: Optional[list] = None) -> int:
    """``python -m tools.protocols shell`` prints ``shell_definitions()``; ``python -m tools.protocols done DIR``
    exits 0 when the run folder holds a result (``tools.results.is_run_done``), 1 when it does not."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tools.protocols", description=main.__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("shell", help="the folder templates and file names, as bash definitions")
    done = commands.add_parser("done", help="exit 0 when RUN_DIR holds a result")
    done.add_argument("run_dir")
    args = parser.parse_args(argv)
    if args.command == "shell":
        print(shell_definitions(), end="")
        return 0
    return 0 if is_run_done(args.run_dir) else 1


if __name__ == "__main__":
    raise SystemExit(main())
