"""Corpus pixels streamed into meta-training for prompt methods that prompt the image tower (VPT, MaPLe).

Nothing is decoded ahead of need and nothing is kept: ``CorpusPixels`` is a map-style dataset over the split's
rows that reads one image by random access (``datasets.corpus_index.ImageLocator``) and applies CLIP's
preprocessing; ``PixelStream.loader`` runs it in a ``torch.utils.data.DataLoader`` whose batch sampler is
the list of row arrays the task sampler will ask for (support, query, support, ...), so worker processes
decode ahead (``prefetch`` batches each) into pinned memory while the model trains. Memory holds a few
batches of images, whatever the corpus size.

A row whose image is missing or unreadable is left out of its batch (the other rows keep their
captions: nothing shifts), counted, and reported by ``report()`` at the end of meta-training.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from datasets.corpus_index import ImageLocator
from trainers.backbone.transforms import clip_preprocess


@dataclass
class RowPixels:
    """The preprocessed images of the readable ``rows`` among the ``requested`` rows, in request order."""

    requested: np.ndarray
    rows: np.ndarray
    images: torch.Tensor
    unreadable: list = field(default_factory=list)

    def pin_memory(self) -> "RowPixels":  # called by the DataLoader's pin-memory thread
        self.images = self.images.pin_memory()
        return self


class CorpusPixels(Dataset):
    """``(row, image tensor or None)`` for the rows of ``ids`` in the corpus at ``source``."""

    def __init__(self, source: str, ids: Sequence[str], resolution: int) -> None:
        self.locator = ImageLocator(source, ids)
        self.transform = clip_preprocess(resolution)
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.locator)

    def __getitem__(self, row: int) -> tuple[int, Optional[torch.Tensor]]:
        data = self.locator.read(int(row))
        if data is None:
            return int(row), None
        try:
            with Image.open(io.BytesIO(data)) as image:
                return int(row), self.transform(image.convert("RGB"))
        except (OSError, ValueError, Image.DecompressionBombError):
            return int(row), None


def collate_rows(items: list) -> RowPixels:
    requested = np.array([row for row, _ in items], dtype=np.int64)
    readable = [(row, image) for row, image in items if image is not None]
    images = torch.stack([image for _, image in readable]) if readable else torch.empty(0)
    return RowPixels(requested, np.array([row for row, _ in readable], dtype=np.int64), images,
                     [row for row, image in items if image is None])


class PixelStream:
    """Pixels of exactly the rows asked for, decoded by DataLoader workers ahead of use."""

    def __init__(self, dataset: CorpusPixels, workers: int = 2, prefetch: int = 2, pin_memory: bool = False) -> None:
        self.dataset = dataset
        self.workers = workers
        self.prefetch = prefetch
        self.pin_memory = pin_memory
        self.skipped = 0  # rows left out of batches
        self.unreadable_rows: set[int] = set()

    def _checked(self, batch: RowPixels) -> RowPixels:
        self.skipped += len(batch.unreadable)
        self.unreadable_rows.update(batch.unreadable)
        if not len(batch.rows):
            raise ValueError(f"none of the {len(batch.requested)} images of a task could be read from "
                             f"{self.dataset.locator.source} (e.g. {self.dataset.locator.describe(batch.requested[0])})")
        return batch

    def fetch(self, rows: Sequence[int]) -> RowPixels:
        """The pixels of ``rows``, decoded now in this process."""
        return self._checked(collate_rows([self.dataset[row] for row in rows]))

    def stream(self, row_lists: list[np.ndarray]) -> Iterator[RowPixels]:
        """The pixels of each array of ``row_lists`` in turn, decoded ahead by the workers."""
        loader = DataLoader(self.dataset, batch_sampler=[list(rows) for rows in row_lists], num_workers=self.workers,
                            collate_fn=collate_rows, pin_memory=self.pin_memory,
                            prefetch_factor=self.prefetch if self.workers > 0 else None)
        for batch in loader:
            yield self._checked(batch)

    def report(self) -> Optional[str]:
        """One line on the rows that could not be read (None when every image was read)."""
        if not self.skipped:
            return None
        rows = sorted(self.unreadable_rows)
        return (f"{len(rows)} corpus image(s) missing or unreadable while streaming, left out of their tasks "
                f"{self.skipped} time(s): e.g. {self.dataset.locator.describe(rows[0])}")
