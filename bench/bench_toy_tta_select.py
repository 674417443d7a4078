"""Choose the toy test-time meta settings (``configs/gram/toy_tpt.yaml``) on shifted domains the TTA table does not report.

    python bench/bench_toy_tta_select.py           # after `make demo` (its world, CLIP and clusters)

The held-out meta-task criterion (``bench_toy_meta_select.py``) adapts with supervised regulated steps;
test-time tuning takes one unsupervised entropy step per image, so it needs its own criterion. Here each
candidate meta-trains ``toy_tpt.yaml`` plus its options (seed 1) and TPT_GRAM then runs test-time tuning
on ``--datasets``, ToyShapes-Faded and ToyShapes-Patterned by default: the shifted styles the README's TTA
table (Noisy, Sketch) leaves out, kept for choosing in this protocol. The score is the mean accuracy over
datasets and seeds 1-3. The best candidate replaces the current setting only when its advantage, paired by
(dataset, seed), has a 95% t interval that excludes 0 (``tools/paired.py``). Zero-shot CLIP and TPT are
run beside them as references. Runs go through ``train.main`` in this process and are kept under
``--output``.
"""
import contextlib
import io
import os
import statistics
import sys
import time
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "third_party")]

import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402
from toy_bench_args import toy_world_parser  # noqa: E402  (bench/ is the script's folder, first on sys.path)

import meta_train  # noqa: E402
import train  # noqa: E402
from fileio.atomic import write_text_atomically  # noqa: E402
from fileio.stage_files import META_CHECKPOINT_NAME  # noqa: E402
from tools import tables  # noqa: E402
from tools.paired import keep_unless_beaten, paired_difference  # noqa: E402
from tools.protocols import Settings, build_runs  # noqa: E402

CONFIG = "tiny"  # configs/trainers/TPT/tiny.yaml, as the README's TTA table
CURRENT = "5 first-order steps of 0.2"
CANDIDATES: Dict[str, List[str]] = {
    "5 first-order steps of 0.05": ["TRAINER.GRAM.INNER_STEPS", "5", "TRAINER.GRAM.INNER_LR", "0.05"],
    CURRENT: [],  # toy_tpt.yaml as shipped
    "10 first-order steps of 0.2": ["TRAINER.GRAM.INNER_STEPS", "10", "TRAINER.GRAM.INNER_LR", "0.2"],
}


def tag(name: str) -> str:
    return name.replace(" ", "_").replace(".", "p")


def meta_checkpoint(args, name: str) -> str:
    """The candidate's toy_tpt meta checkpoint (meta-trained here when missing)."""
    out = os.path.join(args.output, tag(name), "meta")
    path = os.path.join(out, META_CHECKPOINT_NAME)
    if not os.path.isfile(path):
        argv = ["--config-file", os.path.join(REPO, "configs", "gram", "toy_tpt.yaml"), "--split-file",
                args.split_file, "--output-dir", out, "--seed", "1", "MODEL.BACKBONE.NAME", args.clip]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            meta_train.main(meta_train.build_parser().parse_args(argv + CANDIDATES[name]))
    return path


def accuracies(args, trainer: str, output: str, meta_ckpt: str = None) -> Dict[tuple, float]:
    """{(dataset, seed): accuracy} of ``trainer``'s test-time runs under ``output`` (run when missing)."""
    settings = Settings(data_root=args.root, output_root=output, python=sys.executable, config=CONFIG,
                        meta_ckpt=meta_ckpt, extra_opts=["MODEL.BACKBONE.NAME", args.clip])
    for spec in build_runs("tta", trainer, settings, args.datasets, args.seeds, [None]):
        if not os.path.isfile(os.path.join(spec.output_dir, "results.json")):
            argv = spec.argv[spec.argv.index("train.py") + 1:]
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                train.main(train.build_parser().parse_args(argv), env_info=False)
    return {(run.fields["dataset"], run.get("seed") or 0): run.accuracy for run in tables.scan(output)
            if run.fields.get("trainer") == trainer and run.fields.get("dataset") in args.datasets}


def main() -> None:
    parser = toy_world_parser(__doc__.splitlines()[0], split_file=True)
    parser.add_argument("--output", default=os.path.join(REPO, "output", "bench_toy_tta_select"))
    parser.add_argument("--datasets", nargs="+", default=["toy_shapes_faded", "toy_shapes_patterned"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    args = parser.parse_args()
    args.clip = args.clip or os.path.join(args.root, "toy_clip", "toy_vit.pt")
    for path, what in ((args.clip, "the toy CLIP"), (args.split_file, "the clustering split")):
        if not os.path.isfile(path):
            raise SystemExit(f"{path}: {what} is missing; run `make demo` first or pass --root/--clip/--split-file")
    torch.set_num_threads(1)
    os.chdir(REPO)  # run specs name configs relative to the repository
    started = time.time()
    references = {trainer: accuracies(args, trainer, os.path.join(args.output, "references"))
                  for trainer in ("ZeroshotCLIP", "TPT")}
    scores = {name: accuracies(args, "TPT_GRAM", os.path.join(args.output, tag(name)), meta_checkpoint(args, name))
              for name in CANDIDATES}
    means = {name: statistics.mean(values.values()) for name, values in scores.items()}
    chosen = keep_unless_beaten(scores, CURRENT)[0]
    rows = [[f"{trainer} (reference)", f"{statistics.mean(values.values()):.2f}", "", ""]
            for trainer, values in references.items()]
    for name in CANDIDATES:
        versus = "" if name == CURRENT else str(paired_difference(scores[name], scores[CURRENT]))
        note = ", ".join(word for word, flag in (("current", name == CURRENT), ("chosen", name == chosen)) if flag)
        rows.append([f"TPT_GRAM, {name}", f"{means[name]:.2f}", versus, note])
    table = tabulate(rows, headers=["method", "mean acc.", "vs current, paired [95%]", ""], tablefmt="github")
    title = f"toy_tpt meta settings chosen by test-time accuracy on {', '.join(args.datasets)} (seeds {args.seeds})"
    text = f"{title}\n\n{table}\n\nchosen: {chosen}\n"
    print(f"\n{text}{time.time() - started:.0f} s; runs under {args.output}")
    write_text_atomically(os.path.join(args.output, "selection.md"), text)


if __name__ == "__main__":
    main()
