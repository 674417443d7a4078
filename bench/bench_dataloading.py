"""Benchmark of corpus loading (issue 3): images/s of a DataLoader over the image-text corpus.

Data: generated corpora (``datasets.fixtures.build_corpus_fixture``) of ``--n`` square JPEGs, stored at
320 px (CC3M images are a few hundred px a side) or 64 px (toy-world size), each as a TSV manifest + image
files and as webdataset tar shards of 128 entries. Each cell is one full pass of
``DataLoader(CorpusDataset(source, clip_preprocess(resolution)), batch_size, num_workers)``: read, decode,
CLIP's transform (bicubic resize, centre crop, normalise) and batch collation, timed from the first
``iter()`` (worker start-up included).
With ``num_workers=0`` the main process loads with one torch thread, as workers do: on a busy shared CPU,
``ToTensor``/``Normalize`` with all threads ran ~10x slower here (threads fighting over the cores).

For context, the last rows time the image encoder these batches feed, forward only, fp32 on this CPU
(``torch.get_num_threads()`` threads): a ViT-B/16-shaped CLIP at 224 px (random weights) and the project's
tiny CLIP (``testing.tiny_clip``) at 32 px.

Usage: python bench/bench_dataloading.py [--n 512] [--cases 320:224,320:32,64:32] [--workers 0,2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch
from clip.model import CLIP
from tabulate import tabulate
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from datasets.corpus import CorpusDataset  # noqa: E402
from datasets.fixtures import build_corpus_fixture  # noqa: E402
from testing.tiny_clip import build_tiny_clip  # noqa: E402
from trainers.backbone.transforms import clip_preprocess  # noqa: E402


def loader_rate(source: str, resolution: int, num_workers: int, batch_size: int) -> tuple[int, float]:
    """(images, seconds) of one pass over the corpus; the loading process uses one torch thread, as
    DataLoader workers do."""
    dataset = CorpusDataset(source, transform=clip_preprocess(resolution))
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        images = sum(batch["img"].shape[0] for batch in loader)
        return images, time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def encoder_rate(visual: torch.nn.Module, resolution: int, batch_size: int, repeats: int = 3) -> float:
    """Images/s of ``visual`` forward on random images (after one warm-up batch)."""
    visual = visual.float().eval()
    images = torch.randn(batch_size, 3, resolution, resolution)
    visual(images)
    start = time.perf_counter()
    for _ in range(repeats):
        visual(images)
    return repeats * batch_size / (time.perf_counter() - start)


def vit_b16_visual() -> torch.nn.Module:
    """The image tower of a ViT-B/16 CLIP (OpenAI's configuration), random weights."""
    model = CLIP(
        embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
        context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8, transformer_layers=1,
    )
    return model.visual


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=512, help="images in each generated corpus")
    parser.add_argument("--cases", default="320:224,320:32,64:32",
                        help="comma-separated SOURCE:RESOLUTION pairs: side of the stored JPEGs, CLIP input size")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", default="0,2")
    parser.add_argument("--no-encoder", action="store_true", help="skip the image-encoder context rows")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    cases = [tuple(int(side) for side in case.split(":")) for case in args.cases.split(",")]

    rows = []
    with tempfile.TemporaryDirectory() as root:
        for image_size in sorted({source for source, _ in cases}, reverse=True):
            for fmt in ("tsv", "tar"):
                source = build_corpus_fixture(
                    os.path.join(root, f"{fmt}{image_size}"), n=args.n, fmt=fmt, image_size=image_size,
                    shard_size=128,
                ).source
                for resolution in [res for src, res in cases if src == image_size]:
                    for num_workers in workers:
                        images, seconds = loader_rate(source, resolution, num_workers, args.batch_size)
                        rows.append([f"loader ({fmt})", image_size, resolution, num_workers, images,
                                     f"{seconds:.2f}", f"{images / seconds:.0f}"])
    resolutions = {resolution for _, resolution in cases}
    if not args.no_encoder:
        threads = torch.get_num_threads()
        encoders = [("ViT-B/16 image encoder", 224, vit_b16_visual),
                    ("tiny CLIP image encoder", 32, lambda: build_tiny_clip(image_resolution=32).visual)]
        for name, resolution, build in encoders:
            if resolution in resolutions:
                rate = encoder_rate(build(), resolution, batch_size=16 if resolution > 64 else args.batch_size)
                rows.append([f"{name} (fp32, {threads} threads)", "-", resolution, "-", "-", "-", f"{rate:.1f}"])
    print(f"corpus: {args.n} JPEGs per case, batch size {args.batch_size}, {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}")
    print(tabulate(rows, headers=["what", "stored px", "input px", "workers", "images", "seconds", "images/s"]))


if __name__ == "__main__":
    main()
