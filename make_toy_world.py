"""Generate the toy world and pretrain (or reuse) its tiny CLIP.

    python make_toy_world.py --root DATA --seed 0 [--size tiny|small|default] [--resolution 32|64]

writes the toy datasets (CoOp layout, ``configs/datasets/toy_*.yaml``), the held-out class sets (their own
generator seed; never used to choose settings) and the image-text corpus under ``DATA``, then ``DATA/toy_clip/toy_vit.pt`` (use it as ``MODEL.BACKBONE.NAME``), whose path is printed last.
Both steps are cached: a second run with the same settings only prints the summary.
"""
import argparse

from tools.omp_wait import sleep_while_waiting

sleep_while_waiting()  # before torch loads: a shared CPU must not make waiting OpenMP threads spin

from tools.help_format import DefaultsHelpFormatter  # noqa: E402

# The choices --help lists without importing the toy world (and torch), as
# datasets.toy_world's WORLD_SIZES and RESOLUTIONS: tests/test_train_cli.py keeps them equal.
SIZES = ("default", "small", "tiny")
RESOLUTION_CHOICES = (32, 64)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--root", required=True, help="data root (DATASET.ROOT)")
    parser.add_argument("--seed", type=int, default=0, help="world and pretraining seed")
    parser.add_argument("--size", default="default", choices=SIZES, help="world size preset")
    parser.add_argument("--resolution", type=int, default=32, choices=RESOLUTION_CHOICES, help="image side in pixels")
    parser.add_argument("--workers", type=int, default=None, help="image-drawing processes (default: up to 2)")
    return parser


def print_summary(root: str) -> None:
    record = read_toy_clip_record(root)
    print(f"tiny CLIP pretrained in {record['pretrain_seconds']:.0f} s on {record['corpus_pairs']} pairs "
          f"(contrastive loss {record['contrastive_first_loss']:.2f} -> {record['contrastive_last_loss']:.2f}); "
          "zero-shot accuracy (%):")
    print(f"  {'dataset':<20} {'all':>6} {'base':>6} {'new':>6} {'chance':>7}")
    for name, scores in record["zero_shot"].items():
        print(f"  {name:<20} {scores['all']:6.1f} {scores['base']:6.1f} {scores['new']:6.1f} {scores['chance']:7.1f}")


def main() -> None:
    args = build_parser().parse_args()
    world = build_world(args.root, seed=args.seed, size=args.size, resolution=args.resolution, workers=args.workers)
    state = "reused" if world.reused else "built"
    print(f"toy world ({world.size}, seed {world.seed}, {world.resolution} px) {state} in {world.root} "
          f"[{sum(world.num_images.values())} images, build took {world.build_seconds:.0f} s]")
    build_heldout_datasets(args.root, workers=args.workers)
    clip_path = ensure_toy_clip(args.root, seed=args.seed, size=args.size, resolution=args.resolution)
    print_summary(args.root)
    print(clip_path)


if __name__ == "__main__":
    build_parser().parse_args()  # --help and a malformed command line are answered before torch loads

from datasets.toy_world import build_heldout_datasets, build_world, ensure_toy_clip, read_toy_clip_record  # noqa: E402

if __name__ == "__main__":
    main()
