"""File fingerprints: the first 16 hex digits of a file's sha256, as logs, run cards and derived data record
them (the CLIP checkpoint a feature cache or a meta checkpoint was made with, the meta checkpoint of a run)."""
from __future__ import annotations

import hashlib
import os

_fingerprints: dict = {}  # (real path, size, mtime) -> fingerprint: a checkpoint is hashed once per process


def file_sha256(path: str) -> str:
    """The full sha256 hex digest of the file's bytes (read in blocks)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_fingerprint(path: str) -> str:
    """First 16 hex digits of the sha256 of the file's bytes (cached while the file is unchanged)."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = (real, stat.st_size, stat.st_mtime_ns)
    if key not in _fingerprints:
        _fingerprints[key] = file_sha256(real)[:16]
    return _fingerprints[key]
