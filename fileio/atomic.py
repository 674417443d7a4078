"""Atomic file writes for everything the toolbox saves (split files, caches, checkpoints, results, tables).

A file is written to a temporary sibling in the destination folder, flushed to disk, then moved over the
destination with ``os.replace``: a reader (or a run interrupted halfway) sees the old complete file or the
new complete file, never a partial one. The bundled Dassl engine keeps its own copy
(``dassl.utils.write_atomic``) so that it stays importable on its own, and ``tools/train_worker.py`` runs
without the toolbox on its path.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import IO, Callable

import numpy as np


def write_atomically(path: str, write: Callable[[IO], None], binary: bool = False) -> str:
    """Call ``write(handle)`` on a temporary file beside ``path``, then move it onto ``path``; return path."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; a saved file gets the usual permissions
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise
    return path


def write_text_atomically(path: str, text: str) -> str:
    """Write ``text`` to ``path`` atomically; return path."""
    return write_atomically(path, lambda handle: handle.write(text))


def write_json_atomic(path: str, payload: object) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    text = json.dumps(payload, indent=1, sort_keys=True).encode("utf-8")
    write_atomically(path, lambda stream: stream.write(text), binary=True)


def save_npy_atomic(path: str, array: np.ndarray) -> None:
    """Write one array in ``.npy`` format, atomically."""
    write_atomically(path, lambda stream: np.save(stream, array, allow_pickle=False), binary=True)
