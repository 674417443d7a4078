"""Atomic file writes for the clustering stage (feature shards, manifests, split files).

A file is written to a temporary name in the destination folder and moved over the destination
with ``os.replace``, so a reader sees either the old complete file or the new complete file.
"""
from __future__ import annotations

import json
from typing import IO, Callable

import numpy as np

from tools.atomic import write_atomically


def atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(handle)`` on a temporary binary file beside ``path``, then move it onto ``path``."""
    write_atomically(path, write, binary=True)


def write_json_atomic(path: str, payload: object) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    text = json.dumps(payload, indent=1, sort_keys=True).encode("utf-8")
    atomic_write(path, lambda stream: stream.write(text))


def save_npy_atomic(path: str, array: np.ndarray) -> None:
    """Write one array in ``.npy`` format, atomically."""
    atomic_write(path, lambda stream: np.save(stream, array, allow_pickle=False))
