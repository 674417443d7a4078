"""Atomic file writes for everything the toolbox saves (split files, caches, checkpoints, results, tables).

A file is written to a temporary sibling in the destination folder, flushed to disk, then moved over the
destination with ``os.replace``: a reader (or a run interrupted halfway) sees the old complete file or the
new complete file, never a partial one. The bundled Dassl engine keeps its own copy
(``dassl.utils.write_atomic``) so that it stays importable on its own, and ``tools/train_worker.py`` runs
without the toolbox on its path.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from typing import IO, Callable

import numpy as np


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(path: str, error: OSError) -> OSError:
    """The ``OSError`` for a write that ran out of space, its ``strerror`` one line naming the file and the
    free space (what the entry points print)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        free = f"{shutil.disk_usage(folder).free / 1024:.0f} KiB free"
    except OSError:
        free = "free space unknown"
    return OSError(error.errno, f"cannot write {path}: {error.strerror} ({free} on {folder}); the earlier files "
                                "there are intact")


class _WriteRecorder:
    """A file proxy that remembers the ``OSError`` of a failed write: ``torch.save`` reports one only as a
    ``RuntimeError`` of its zip writer, so a full disk would otherwise go unrecognised."""

    def __init__(self, handle: IO) -> None:
        self._handle = handle
        self.write_error: OSError | None = None

    def write(self, data):
        try:
            return self._handle.write(data)
        except OSError as error:
            self.write_error = error
            raise

    def __getattr__(self, name: str):
        return getattr(self._handle, name)


def write_atomically(path: str, write: Callable[[IO], None], binary: bool = False) -> str:
    """Call ``write(handle)`` on a temporary file beside ``path``, then move it onto ``path``; return path.
    A full disk raises ``disk_full_error``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    recorder = None
    try:
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            recorder = _WriteRecorder(handle)
            write(recorder)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; a saved file gets the usual permissions
        os.replace(tmp_path, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        cause = error if isinstance(error, OSError) else getattr(recorder, "write_error", None)
        if cause is not None and cause.errno in NO_SPACE:
            raise disk_full_error(path, cause) from None
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
