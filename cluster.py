"""GRAM's clustering stage: encode an image-text corpus with frozen CLIP, cluster it into domains,
and write the split file meta-training (meta_train.py) and test-time tuning read.

    python cluster.py --corpus DATA/cc3m/train.tsv --clip ViT-B/16 --out output/gram/split/cmhc \
        [--method kmeans|cmhc] [--levels 4,16,64] [--k 256] [--gpu] [--batch-size 256] [--seed 1]

The features are cached (resumable) in OUT/features unless --cache-dir says otherwise; a re-run
with the same corpus and CLIP reuses them. The split is OUT/split.json plus its arrays file (format:
trainers/gram/clustering/split_file.py). --method kmeans is the ICCV setting (one level of --k
domains); cmhc the journal's hierarchy (--k k-means leaves merged into --levels).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Optional, Sequence

import numpy as np
import torch
from tabulate import tabulate
from torch.utils.data import DataLoader

from datasets.corpus import CorpusDataset, ImageTextCorpus
from trainers.backbone.clip_loader import CLIPCheckpointError, checkpoint_fingerprint, load_clip
from trainers.backbone.precision import apply_precision
from trainers.backbone.transforms import clip_preprocess
from trainers.gram.clustering import (ClusteringSettings, ClusterSplit, build_split, corpus_source_key,
                                      encode_corpus, save_split)


def _numbers(text: str, kind: type, count: Optional[int] = None) -> tuple:
    try:
        values = tuple(kind(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s, got {text!r}") from None
    if count is not None and len(values) != count:
        raise argparse.ArgumentTypeError(f"expected {count} comma-separated numbers, got {text!r}")
    return values


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="GRAM clustering stage: corpus -> CLIP features -> split file")
    parser.add_argument("--corpus", required=True, help="corpus manifest (.tsv/.csv/.jsonl) or folder of .tar shards")
    parser.add_argument("--clip", required=True, help="OpenAI CLIP name (ViT-B/16) or checkpoint path")
    parser.add_argument("--out", required=True, help="output folder for split.json and its arrays")
    parser.add_argument("--method", choices=("kmeans", "cmhc"), default="cmhc")
    parser.add_argument("--levels", type=lambda text: _numbers(text, int), default=None,
                        help="CMHC clusters per level, coarse to fine (default 4,16,64)")
    parser.add_argument("--k", type=int, default=256, help="k-means clusters (kmeans) or leaves (cmhc)")
    parser.add_argument("--niter", type=int, default=20, help="k-means iterations")
    parser.add_argument("--nredo", type=int, default=1, help="k-means restarts (best objective kept)")
    parser.add_argument("--max-points-per-centroid", type=int, default=256,
                        help="k-means trains on at most k times this many pairs")
    parser.add_argument("--affinity-weights", type=lambda text: _numbers(text, float, 3), default=(1.0, 1.0, 1.0),
                        help="CMHC weights w_ii,w_tt,w_it of image-image, text-text, image-text similarity")
    parser.add_argument("--complexity-weights", type=lambda text: _numbers(text, float, 3), default=(1.0, 1.0, 1.0),
                        help="weights of dispersion, image-text disagreement, sub-structure")
    parser.add_argument("--prototype-strength", type=float, default=0.0,
                        help="CMHC: build prototypes with each cluster's structure complexity (gamma; 0: plain means)")
    parser.add_argument("--gpu", action="store_true", help="run FAISS on the GPU when this FAISS build has one")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="device for the CLIP encoder")
    parser.add_argument("--batch-size", type=int, default=256, help="pairs per CLIP forward")
    parser.add_argument("--workers", type=int, default=0,
                        help="DataLoader workers decoding images (0: in this process; the row order depends on it)")
    parser.add_argument("--shard-size", type=int, default=4096, help="pairs per feature-cache shard")
    parser.add_argument("--cache-dir", default=None, help="feature cache folder (default OUT/features)")
    parser.add_argument("--subsample", type=float, default=None, help="keep this fraction of the corpus")
    parser.add_argument("--seed", type=int, default=1, help="seed of k-means and of --subsample")
    args = parser.parse_args(argv)
    if args.method == "kmeans" and args.levels is not None:
        parser.error("--levels applies to --method cmhc; the k-means split has one level of --k clusters")
    args.levels = args.levels or (4, 16, 64)
    return args


def summary_table(split: ClusterSplit) -> str:
    rows = []
    for index, level in enumerate(split.levels):
        rows.append([index, level.num_clusters, int(level.sizes.min()), int(np.median(level.sizes)),
                     int(level.sizes.max()), f"{level.complexity.min():.2f}", f"{level.complexity.max():.2f}"])
    return tabulate(rows, headers=["level", "clusters", "min size", "median size", "max size",
                                   "min complexity", "max complexity"])


def run(args: argparse.Namespace) -> ClusterSplit:
    """Encode (cached) and cluster as ``args`` says; write and return the split."""
    start = time.perf_counter()

    fingerprint = checkpoint_fingerprint(args.clip)
    model = apply_precision(load_clip(args.clip, device=args.device), "fp32" if args.device == "cpu" else "fp16")
    transform = clip_preprocess(model.visual.input_resolution)
    corpus = ImageTextCorpus(args.corpus, subsample=args.subsample, seed=args.seed)
    items = corpus if args.workers == 0 else DataLoader(CorpusDataset(corpus, transform), batch_size=None,
                                                        num_workers=args.workers)
    corpus_key = (f"{corpus_source_key(args.corpus)}:subsample={args.subsample}:seed={args.seed}"
                  f":workers={args.workers}")
    encoded = encode_corpus(model, transform, items,
                            args.cache_dir or os.path.join(args.out, "features"), clip_fingerprint=fingerprint,
                            corpus_key=corpus_key, shard_size=args.shard_size, batch_size=args.batch_size,
                            device=args.device, source=args.corpus)
    del model
    print(f"features: {len(encoded.ids)} pairs ({encoded.pairs_encoded} encoded now, the rest from "
          f"{encoded.cache_dir}), CLIP {fingerprint}")

    settings = ClusteringSettings(method=args.method, k=args.k, levels=args.levels, niter=args.niter,
                                  nredo=args.nredo, seed=args.seed,
                                  max_points_per_centroid=args.max_points_per_centroid,
                                  affinity_weights=args.affinity_weights,
                                  complexity_weights=args.complexity_weights,
                                  prototype_strength=args.prototype_strength, gpu=args.gpu)
    split = build_split(encoded.image, encoded.text, encoded.ids, settings, fingerprint, source=args.corpus)
    split.settings.update(corpus=os.path.abspath(args.corpus), clip=args.clip, subsample=args.subsample,
                          feature_cache=os.path.abspath(encoded.cache_dir))
    path = save_split(split, args.out)
    print(summary_table(split))
    print(f"split ({args.method}) written to {path} in {time.perf_counter() - start:.1f} s")
    return split


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        run(args)
    except (ValueError, FileNotFoundError, CLIPCheckpointError) as error:
        print(f"cluster.py: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
