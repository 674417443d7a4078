"""GRAM's clustering stage: encode an image-text corpus with frozen CLIP, cluster it into domains,
and write the split file meta-training (meta_train.py) and test-time tuning read.

    python cluster.py --corpus DATA/cc3m/train.tsv --backbone ViT-B/16 --output-dir output/gram/split/cmhc \
        [--method kmeans|cmhc] [--levels 4,16,64] [--k 256] [--gpu] [--batch-size 256] [--seed 1]

The features are cached in OUTPUT_DIR/features unless --cache-dir says otherwise: a re-run (also after
a kill mid-encoding) reuses every verified shard and encodes only the missing rows. The split is
OUTPUT_DIR/split.json plus its arrays file (format: clustering/split_file.py). --method kmeans is the ICCV setting (one level of --k
domains); cmhc the journal's hierarchy (--k k-means leaves merged into --levels).

Several processes or machines: ``torchrun --nproc-per-node N [--nnodes M ...] cluster.py ...`` splits the
encoding by rank (feature shard i on rank i % N*M); rank 0 writes the manifest and clusters. Ranks
started with another corpus, CLIP checkpoint or settings are refused before any work.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Optional, Sequence

from tools.help_format import DefaultsHelpFormatter


def _numbers(text: str, kind: type, count: Optional[int] = None) -> tuple:
    try:
        values = tuple(kind(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s, got {text!r}") from None
    if count is not None and len(values) != count:
        raise argparse.ArgumentTypeError(f"expected {count} comma-separated numbers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="GRAM clustering stage: corpus -> CLIP features -> split file",
                                     formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--corpus", required=True, help="corpus manifest (.tsv/.csv/.jsonl) or folder of .tar shards")
    parser.add_argument("--backbone", "--clip", dest="backbone", required=True,
                        help="OpenAI CLIP name (ViT-B/16), checkpoint path, or open_clip:<model>[@<pretrained>]")
    parser.add_argument("--output-dir", "--out", dest="output_dir", required=True,
                        help="output folder for split.json and its arrays")
    parser.add_argument("--method", choices=("kmeans", "cmhc"), default="cmhc",
                        help="kmeans: one level of --k domains (ICCV); cmhc: the journal's hierarchy")
    parser.add_argument("--levels", type=lambda text: _numbers(text, int), default=None,
                        help="CMHC clusters per level, coarse to fine (default 4,16,64)")
    parser.add_argument("--k", type=int, default=256, help="k-means clusters (kmeans) or leaves (cmhc)")
    parser.add_argument("--niter", type=int, default=20, help="k-means iterations")
    parser.add_argument("--nredo", type=int, default=1, help="k-means restarts (best objective kept)")
    parser.add_argument("--max-points-per-centroid", type=int, default=256,
                        help="k-means trains on at most k times this many pairs")
    parser.add_argument("--affinity-weights", type=lambda text: _numbers(text, float, 3), default=(1.0, 1.0, 1.0),
                        help="CMHC weights w_ii,w_tt,w_it of image-image, text-text, image-text similarity (default 1,1,1)")
    parser.add_argument("--complexity-weights", type=lambda text: _numbers(text, float, 3), default=(1.0, 1.0, 1.0),
                        help="weights of dispersion, image-text disagreement, sub-structure (default 1,1,1)")
    parser.add_argument("--prototype-strength", type=float, default=0.0,
                        help="CMHC: build prototypes with each cluster's structure complexity (gamma; 0: plain means)")
    parser.add_argument("--gpu", action="store_true", help="run FAISS on the GPU when this FAISS build has one")
    parser.add_argument("--device", default=None,
                        help="device for the CLIP encoder (default: cuda when available, else cpu)")
    parser.add_argument("--batch-size", type=int, default=256, help="pairs per CLIP forward")
    parser.add_argument("--workers", type=int, default=0,
                        help="threads decoding and transforming images (0: none; the features do not depend on it)")
    parser.add_argument("--shard-size", type=int, default=4096, help="pairs per feature-cache shard")
    parser.add_argument("--cache-dir", default=None, help="feature cache folder (default OUTPUT_DIR/features)")
    parser.add_argument("--subsample", type=float, default=None, help="keep this fraction of the corpus")
    parser.add_argument("--seed", type=int, default=1, help="seed of k-means and of --subsample")
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.method == "kmeans" and args.levels is not None:
        parser.error("--levels applies to --method cmhc; the k-means split has one level of --k clusters")
    args.levels = args.levels or (4, 16, 64)
    return args


if __name__ == "__main__":
    parse_args()  # --help and a malformed command line are answered before torch loads

# The stage itself, imported after the parser so that the lines above need none of it; the functions
# below use these names only when they run.
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402

from clustering import (ClusteringSettings, ClusterSplit, build_split, corpus_source_key, encode_corpus,  # noqa: E402
                        save_split)
from datasets.corpus import CorpusStats, ImageTextCorpus, corpus_fingerprint  # noqa: E402
from fileio.atomic import NO_SPACE  # noqa: E402
from parallel import distributed  # noqa: E402
from trainers.backbone.clip_loader import CLIPCheckpointError, checkpoint_fingerprint, load_clip  # noqa: E402
from trainers.backbone.precision import apply_precision  # noqa: E402
from trainers.backbone.transforms import clip_preprocess  # noqa: E402


def summary_table(split: ClusterSplit) -> str:
    rows = []
    for index, level in enumerate(split.levels):
        rows.append([index, level.num_clusters, int(level.sizes.min()), int(np.median(level.sizes)),
                     int(level.sizes.max()), f"{level.complexity.min():.2f}", f"{level.complexity.max():.2f}"])
    return tabulate(rows, headers=["level", "clusters", "min size", "median size", "max size",
                                   "min complexity", "max complexity"])


def report_skipped(stats: CorpusStats) -> None:
    """One line saying what the corpus reader skipped (nothing when it skipped nothing or did not run)."""
    skipped = {"missing images": stats.missing, "unreadable images": stats.corrupt,
               "empty captions": stats.empty_caption, "damaged shards": stats.bad_shards,
               "entries cut short in them": stats.lost_in_bad_shards}
    if any(skipped.values()):
        print("corpus: skipped " + ", ".join(f"{count} {what}" for what, count in skipped.items() if count)
              + " (listed in the warnings above)")


def run(args: argparse.Namespace) -> Optional[ClusterSplit]:
    """Encode (cached) and cluster as ``args`` says; write and return the split (None on ranks > 0)."""
    start = time.perf_counter()

    fingerprint = checkpoint_fingerprint(args.backbone)
    source_key = corpus_source_key(args.corpus)
    distributed.require_agreement({"corpus": source_key, "CLIP checkpoint": fingerprint,
                                   "settings": {k: v for k, v in vars(args).items() if k != "device"}}, "cluster.py")
    device = distributed.device_for_rank(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = apply_precision(load_clip(args.backbone, device=device), "fp32" if device == "cpu" else "fp16")
    transform = clip_preprocess(model.visual.input_resolution)
    corpus = ImageTextCorpus(args.corpus, subsample=args.subsample, seed=args.seed)
    corpus_key = f"{source_key}:subsample={args.subsample}:seed={args.seed}"
    encoded = encode_corpus(model, transform, corpus.lazy(),
                            args.cache_dir or os.path.join(args.output_dir, "features"), clip_fingerprint=fingerprint,
                            corpus_key=corpus_key, shard_size=args.shard_size, batch_size=args.batch_size,
                            device=device, source=args.corpus, workers=args.workers,
                            progress=distributed.is_main())
    del model
    if encoded is None:
        return None
    report_skipped(corpus.stats)
    ranks = f" by {distributed.world_size()} ranks" if distributed.is_distributed() else ""
    print(f"features: {len(encoded.ids)} pairs ({encoded.pairs_encoded} encoded now{ranks}, {encoded.pairs_reused} "
          f"reused from verified shards of {encoded.cache_dir}, {encoded.shards_reused} shards untouched; "
          f"{encoded.pairs_skipped} unreadable images skipped), CLIP {fingerprint}")

    settings = ClusteringSettings(method=args.method, k=args.k, levels=args.levels, niter=args.niter,
                                  nredo=args.nredo, seed=args.seed,
                                  max_points_per_centroid=args.max_points_per_centroid,
                                  affinity_weights=args.affinity_weights,
                                  complexity_weights=args.complexity_weights,
                                  prototype_strength=args.prototype_strength, gpu=args.gpu)
    split = build_split(encoded.image, encoded.text, encoded.ids, settings, fingerprint, source=args.corpus)
    split.settings.update(corpus=os.path.abspath(args.corpus), corpus_fingerprint=corpus_fingerprint(args.corpus),
                          clip=args.backbone, subsample=args.subsample,
                          feature_cache=os.path.abspath(encoded.cache_dir))
    path = save_split(split, args.output_dir)
    print(summary_table(split))
    print(f"split ({args.method}) written to {path} in {time.perf_counter() - start:.1f} s")
    return split


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        distributed.init_from_env()
        run(args)
    except (ValueError, FileNotFoundError, CLIPCheckpointError) as error:
        print(f"cluster.py: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.errno not in NO_SPACE:
            raise
        print(f"cluster.py: {error.strerror}", file=sys.stderr)
        return 2
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
