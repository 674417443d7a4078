"""Random access to the images of an image-text corpus by row (for streaming pixels into meta-training).

``ImageLocator(source, ids)`` finds, once, where the image of every id lives, and ``read(row)`` returns that
image's bytes (``None`` when it is missing):

- manifests (``.tsv``/``.csv``/``.jsonl``): one pass over the manifest keeps the image path of each wanted id;
  ``read`` opens that file.
- tar shards: an index of each shard (key -> offset and size of the image member's data) is built once from
  the tar headers and cached beside the shard as ``.<shard>.index.json`` (rebuilt when the shard's size or
  modification time changes; kept in memory when the folder is read-only); ``read`` seeks into the shard.

What is kept per row is a few numbers or one path, in numpy arrays (no Python object per row, so
DataLoader workers forked from the process share it without copying).
"""
from __future__ import annotations

import json
import logging
import os
import tarfile
from typing import Optional, Sequence

import numpy as np

from fileio.atomic import write_text_atomically

from .corpus import IMAGE_EXTENSIONS, ImageTextCorpus

logger = logging.getLogger(__name__)

INDEX_VERSION = 1


def shard_index_path(shard: str) -> str:
    folder, name = os.path.split(os.path.abspath(shard))
    return os.path.join(folder, f".{name}.index.json")


def _scan_shard(shard: str) -> dict[str, list[int]]:
    """``{key: [offset of the image data, size]}`` from the shard's tar headers (first image of a key)."""
    members: dict[str, list[int]] = {}
    try:
        with tarfile.open(shard, mode="r:") as tar:
            for member in tar:
                folder, filename = os.path.split(member.name)
                stem, _, extension = filename.partition(".")
                if member.isfile() and extension.lower() in IMAGE_EXTENSIONS:
                    members.setdefault(os.path.join(folder, stem), [member.offset_data, member.size])
    except (tarfile.TarError, EOFError, OSError) as error:
        logger.warning("image-text corpus: shard %s is damaged (%s); indexed %d images before it", shard, error,
                       len(members))
    return members


def shard_index(shard: str) -> dict[str, list[int]]:
    """The shard's image index, read from its cache file when that matches the shard, else built and cached."""
    stat = os.stat(shard)
    stamp = {"version": INDEX_VERSION, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    path = shard_index_path(shard)
    try:
        with open(path, encoding="utf-8") as handle:
            cached = json.load(handle)
        if cached.get("stamp") == stamp:
            return cached["members"]
    except (OSError, json.JSONDecodeError, AttributeError):
        pass
    members = _scan_shard(shard)
    try:
        write_text_atomically(path, json.dumps({"stamp": stamp, "members": members}))
    except OSError as error:
        logger.warning("image-text corpus: cannot cache the index of %s (%s); it is rebuilt next time", shard, error)
    return members


class ImageLocator:
    """Where the image of each of ``ids`` (rows, in this order) is; ``read(row)`` gives its bytes."""

    def __init__(self, source: str, ids: Sequence[str]) -> None:
        corpus = ImageTextCorpus(source)
        row_of = {corpus_id: row for row, corpus_id in enumerate(ids)}
        self.source = source
        self.shards = corpus.shards
        if self.shards:
            self.where = np.full((len(ids), 3), -1, dtype=np.int64)  # shard, offset, size
            for shard_number, shard in enumerate(self.shards):
                for key, (offset, size) in shard_index(shard).items():
                    row = row_of.get(key)
                    if row is not None:
                        self.where[row] = (shard_number, offset, size)
            found = self.where[:, 0] >= 0
            self.paths = None
        else:
            paths = [b""] * len(ids)
            for corpus_id, image_path in corpus.image_paths():
                row = row_of.get(corpus_id)
                if row is not None:
                    paths[row] = os.fsencode(image_path)
            self.paths = np.array(paths, dtype=np.bytes_)
            found = self.paths != b""
        del row_of
        self.unlocated = int((~found).sum())
        if self.unlocated == len(ids) and len(ids):
            raise ValueError(f"{source} holds none of the {len(ids)} images of the split (another corpus?)")

    def __len__(self) -> int:
        return len(self.where) if self.paths is None else len(self.paths)

    def describe(self, row: int) -> str:
        if self.paths is not None:
            return os.fsdecode(self.paths[row]) or f"row {row} (not in {self.source})"
        shard, offset, _ = self.where[row]
        return f"{self.shards[shard]}@{offset}" if shard >= 0 else f"row {row} (not in {self.source})"

    def read(self, row: int) -> Optional[bytes]:
        """The image file's bytes of ``row``, or None when it is not in the corpus or cannot be read."""
        try:
            if self.paths is not None:
                path = self.paths[row]
                if not path:
                    return None
                with open(path, "rb") as handle:
                    return handle.read()
            shard, offset, size = (int(value) for value in self.where[row])
            if shard < 0:
                return None
            with open(self.shards[shard], "rb") as handle:
                handle.seek(offset)
                data = handle.read(size)
            return data if len(data) == size else None
        except OSError:
            return None
