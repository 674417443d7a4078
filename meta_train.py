"""GRAM stage 2: meta-learn a prompt initialization and a gradient regulator from a clustered corpus.

    python meta_train.py --root DATA --config-file configs/gram/coop_vit_b16.yaml \
        --split-file output/gram/clusters/split.json --output-dir output/gram/CoOp \
        [--method CoOp] [--corpus MANIFEST] [--seed 1] [KEY VALUE ...]

Writes Dassl-style checkpoints (resumed automatically when the output dir has them), ``log.txt``,
tensorboard logs and, at the end, ``<output-dir>/meta_checkpoint.pth`` for
``TRAINER.GRAM.META_CKPT`` of the GRAM trainers.

Several GPUs or machines: ``torchrun --nproc-per-node N meta_train.py ...`` splits each meta-batch over the
ranks (see ``trainers/gram/meta_trainer.py``); rank 0 writes the checkpoints, a relaunch resumes.
"""
import argparse
import contextlib

from tools.help_format import DefaultsHelpFormatter


def setup_cfg(args: argparse.Namespace):
    cfg = default_cfg()
    if args.config_file:
        merge_file(cfg, args.config_file, "meta-training config file")
    if args.root:
        cfg.DATASET.ROOT = args.root
    if args.output_dir:
        cfg.OUTPUT_DIR = args.output_dir
    if args.seed >= 0:
        cfg.SEED = args.seed
    if args.backbone:
        cfg.MODEL.BACKBONE.NAME = args.backbone
    if args.split_file:
        cfg.TRAINER.GRAM.SPLIT_FILE = args.split_file
    if args.corpus:
        cfg.TRAINER.GRAM.CORPUS = args.corpus
    if args.method:
        cfg.TRAINER.GRAM.METHOD = args.method
    merge_opts(cfg, args.opts)
    cfg.TRAINER.GRAM.METHOD = canonical_trainer_name(cfg.TRAINER.GRAM.METHOD)
    cfg.freeze()
    return cfg


def main(args: argparse.Namespace) -> None:
    cfg = setup_cfg(args)
    distributed.init_from_env()
    distributed.silence_other_ranks()
    # rank 0 holds the run folder's lock and settings for all ranks (they share the folder)
    claim = (claimed_run_folder(cfg.OUTPUT_DIR, meta_train_settings(cfg, args)) if distributed.is_main()
             else contextlib.nullcontext())
    try:
        with claim:
            start_run(cfg, log_to_file=distributed.is_main())
            print(cfg)
            with one_line_errors():
                trainer = MetaTrainer(cfg)
            trainer.train()
    finally:
        distributed.shutdown()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--root", type=str, default="", help="path to datasets (recorded; the corpus comes from the split)")
    parser.add_argument("--config-file", type=str, default="", help="meta-training config (configs/gram/*.yaml)")
    parser.add_argument("--split-file", type=str, default="", help="split.json written by cluster.py")
    parser.add_argument("--corpus", type=str, default="", help="corpus manifest (for methods that prompt the image tower)")
    parser.add_argument("--method", type=str, default="", help="prompt method to meta-train (CoOp, CoCoOp, VPT, MaPLe)")
    parser.add_argument("--backbone", type=str, default="", help="CLIP name or checkpoint path")
    parser.add_argument("--output-dir", type=str, default="", help="output directory")
    parser.add_argument("--seed", type=int, default=-1, help="only a non-negative value fixes the seed")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER, help="modify config options (KEY VALUE ...)")
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help and a malformed command line are answered before torch loads

# The toolbox, imported after the parser (as in train.py); the functions above use these names when they run.
from trainers.dassl_compat import ensure_dassl_compat  # noqa: E402

ensure_dassl_compat()

import trainers  # noqa: E402,F401  (registers the prompt methods)
from parallel import distributed  # noqa: E402
from tools.cli import (canonical_trainer_name, default_cfg, merge_file, merge_opts, one_line_errors,  # noqa: E402
                       run_entry_point, start_run)
from tools.run_folder import claimed_run_folder, meta_train_settings  # noqa: E402
from trainers.gram.meta_trainer import MetaTrainer  # noqa: E402

if __name__ == "__main__":
    run_entry_point(main, build_parser(), "meta_train.py")
