"""Train or evaluate a prompt-learning trainer: CoOp's command line, on Dassl (bundled or upstream).

    python train.py --root DATA --trainer CoOp \
        --dataset-config-file configs/datasets/oxford_pets.yaml \
        --config-file configs/trainers/CoOp/vit_b16_ep50.yaml \
        --output-dir output/oxford_pets/CoOp/seed1 --seed 1 \
        TRAINER.COOP.N_CTX 16 DATASET.NUM_SHOTS 16

Besides Dassl's ``log.txt`` and tensorboard logs, every run writes a protocol card into its log
and a machine-readable ``results.json`` next to it.
"""
import argparse
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Optional

from tools.help_format import DefaultsHelpFormatter

ENVIRONMENT_REPORT: Optional[Future] = None  # started early when train.py runs as a script (see the end)


def environment_report() -> str:
    """Dassl's environment report (torch's, plus Pillow's version)."""
    return ENVIRONMENT_REPORT.result() if ENVIRONMENT_REPORT is not None else collect_env_info()


def print_args(args: argparse.Namespace, cfg) -> None:
    print("***************")
    print("** Arguments **")
    print("***************")
    for key in sorted(args.__dict__):
        print(f"{key}: {args.__dict__[key]}")
    print("************")
    print("** Config **")
    print("************")
    print(cfg)


def reset_cfg(cfg, args: argparse.Namespace) -> None:
    if args.root:
        cfg.DATASET.ROOT = args.root
    if args.output_dir:
        cfg.OUTPUT_DIR = args.output_dir
    if args.resume:
        cfg.RESUME = args.resume
    if args.seed:
        cfg.SEED = args.seed
    if args.source_domains:
        cfg.DATASET.SOURCE_DOMAINS = args.source_domains
    if args.target_domains:
        cfg.DATASET.TARGET_DOMAINS = args.target_domains
    if args.transforms:
        cfg.INPUT.TRANSFORMS = args.transforms
    if args.trainer:
        cfg.TRAINER.NAME = canonical_trainer_name(args.trainer)
    if args.backbone:
        cfg.MODEL.BACKBONE.NAME = args.backbone
    if args.head:
        cfg.MODEL.HEAD.NAME = args.head


def setup_cfg(args: argparse.Namespace):
    cfg = default_cfg()
    if args.dataset_config_file:
        merge_file(cfg, args.dataset_config_file, "dataset config file")
    if args.config_file:
        merge_file(cfg, args.config_file, "trainer config file")
    reset_cfg(cfg, args)
    merge_opts(cfg, args.opts)
    cfg.TRAINER.NAME = canonical_trainer_name(cfg.TRAINER.NAME)
    cfg.freeze()
    return cfg


def capture_test_results(trainer) -> dict:
    """Record what the evaluator returns, on the bundled engine and on upstream Dassl alike."""
    captured: dict = {}
    evaluate = trainer.evaluator.evaluate

    def evaluate_and_record():
        results = evaluate()
        captured.clear()
        captured.update(results)
        return results

    trainer.evaluator.evaluate = evaluate_and_record
    return captured


def main(args: argparse.Namespace, env_info: bool = True) -> None:
    """Run one training or evaluation; ``env_info=False`` skips the (slow) environment report,
    for callers that run many short jobs in one process (``bench/bench_toy_gram.py``)."""
    cfg = setup_cfg(args)
    with claimed_run_folder(cfg.OUTPUT_DIR, None if args.eval_only else train_settings(cfg, args)):
        run(cfg, args, env_info)


def run(cfg, args: argparse.Namespace, env_info: bool) -> None:
    """The run itself, in an output folder this process holds."""
    start_run(cfg)

    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True

    print_args(args, cfg)
    if env_info:
        print("Collecting env info ** ")
        print(environment_report())
    print(protocol_card(cfg, args))

    with one_line_errors():
        trainer = build_trainer(cfg)
    results = capture_test_results(trainer)

    with one_line_image_errors():
        if args.eval_only:
            with one_line_errors():
                trainer.load_model(args.model_dir, epoch=args.load_epoch)
            trainer.test()
        elif not args.no_train:
            trainer.train()

    if results:
        write_results_json(cfg.OUTPUT_DIR, results_record(cfg, args, results))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--root", type=str, default="", help="path to dataset")
    parser.add_argument("--output-dir", type=str, default="", help="output directory")
    parser.add_argument("--resume", type=str, default="", help="checkpoint directory (from which the training resumes)")
    parser.add_argument("--seed", type=int, default=-1, help="only positive value enables a fixed seed")
    parser.add_argument("--source-domains", type=str, nargs="+", help="source domains for DA/DG")
    parser.add_argument("--target-domains", type=str, nargs="+", help="target domains for DA/DG")
    parser.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    parser.add_argument("--config-file", type=str, default="", help="path to config file")
    parser.add_argument("--dataset-config-file", type=str, default="", help="path to config file for dataset setup")
    parser.add_argument("--trainer", type=str, default="", help="name of trainer")
    parser.add_argument("--backbone", type=str, default="", help="CLIP name or checkpoint path (MODEL.BACKBONE.NAME)")
    parser.add_argument("--head", type=str, default="", help="name of head")
    parser.add_argument("--eval-only", action="store_true", help="evaluation only")
    parser.add_argument("--model-dir", type=str, default="", help="load model from this directory for eval-only mode")
    parser.add_argument("--load-epoch", type=int, help="load model weights at this epoch for evaluation")
    parser.add_argument("--no-train", action="store_true", help="do not call trainer.train()")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER, help="modify config options using the command-line")
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help and a malformed command line are answered before torch loads

# The toolbox, imported after the parser so that the lines above need none of it; the functions above
# use these names only when they run.
import torch  # noqa: E402
from dassl.utils import collect_env_info  # noqa: E402

if __name__ == "__main__":  # the report waits on subprocesses (pip, nvidia-smi): let them overlap the imports
    ENVIRONMENT_REPORT = ThreadPoolExecutor(max_workers=1).submit(collect_env_info)

from trainers.dassl_compat import ensure_dassl_compat  # noqa: E402

ensure_dassl_compat()

from dassl.engine import build_trainer  # noqa: E402

import datasets  # noqa: E402,F401  (registers the datasets)
import trainers  # noqa: E402,F401  (registers the trainers)
from tools.protocol_card import protocol_card, results_record, write_results_json  # noqa: E402
from tools.cli import (canonical_trainer_name, default_cfg, merge_file, merge_opts, one_line_errors,  # noqa: E402
                       one_line_image_errors, run_entry_point, start_run)
from tools.run_folder import claimed_run_folder, train_settings  # noqa: E402

if __name__ == "__main__":
    run_entry_point(main, build_parser(), "train.py")
