"""File, JSON, image, seeding and environment helpers (Dassl's ``dassl.utils.tools``)."""
import difflib
import errno
import json
import os
import os.path as osp
import random
import re
import shutil
import tempfile
import warnings
from typing import Any, Iterable, List, Optional, Sequence

import numpy as np
import PIL
import torch
from PIL import Image

__all__ = [
    "mkdir_if_missing",
    "check_isfile",
    "read_json",
    "write_json",
    "write_atomic",
    "remove_stale_temporaries",
    "DiskFullError",
    "set_random_seed",
    "read_image",
    "UnreadableImageError",
    "collect_env_info",
    "listdir_nohidden",
    "get_most_similar_str_to_a_from_b",
    "check_availability",
    "tolist_if_not",
]


def mkdir_if_missing(dirname: str) -> None:
    """Create ``dirname`` (and its parents) unless it exists; a failure names the directory."""
    if not dirname or osp.isdir(dirname):
        return
    try:
        os.makedirs(dirname, exist_ok=True)
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise PermissionError(
                f"Cannot create directory {dirname}: {err.strerror} (choose a writable output directory)"
            ) from None
        raise OSError(f"Cannot create directory {dirname}: {err.strerror}") from None


def check_isfile(fpath: str) -> bool:
    """True if ``fpath`` is a file; warns (as Dassl does) when it is not."""
    isfile = osp.isfile(fpath)
    if not isfile:
        warnings.warn(f'No file found at "{fpath}"')
    return isfile


def read_json(fpath: str) -> Any:
    """Read a JSON file; a malformed file raises an error naming it."""
    with open(fpath, "r") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{fpath} is not valid JSON: {err}") from None


class DiskFullError(OSError):
    """A file could not be written for lack of space; the message names the file and the free space."""

    def __init__(self, fpath: str, err: OSError):
        folder = osp.dirname(osp.abspath(fpath))
        try:
            free = f"{shutil.disk_usage(folder).free / 1024:.0f} KiB free"
        except OSError:
            free = "free space unknown"
        super().__init__(err.errno, f"cannot write {fpath}: {err.strerror} ({free} on {folder}); the earlier "
                                    "files there are intact")

    def __str__(self) -> str:
        return self.strerror


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class _WriteRecorder:
    """A file proxy that remembers the ``OSError`` of a failed write: ``torch.save`` reports one only as a
    ``RuntimeError`` of its zip writer, so a full disk would otherwise go unrecognised."""

    def __init__(self, handle):
        self._handle = handle
        self.write_error: Optional[OSError] = None

    def write(self, data):
        try:
            return self._handle.write(data)
        except OSError as err:
            self.write_error = err
            raise

    def __getattr__(self, name: str):
        return getattr(self._handle, name)


TEMPORARY_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # what write_atomic's mkstemp names look like


def write_atomic(fpath: str, write_fn, mode: str = "w") -> None:
    """Write ``fpath`` through ``write_fn(file)`` into a temp file in the same folder, then rename.

    Readers never see a half-written file, even when the process dies mid-write (the temporary it leaves is
    removed by ``remove_stale_temporaries`` when a run starts there again). A full disk raises
    ``DiskFullError``, naming the file and the free space.
    """
    dirname = osp.dirname(osp.abspath(fpath))
    mkdir_if_missing(dirname)
    try:
        fd, tmp_path = tempfile.mkstemp(dir=dirname, prefix="." + osp.basename(fpath) + ".", suffix=".tmp")
    except OSError as err:
        raise (DiskFullError(fpath, err) if err.errno in NO_SPACE else err) from None
    recorder = None
    try:
        with os.fdopen(fd, mode) as f:
            recorder = _WriteRecorder(f)
            write_fn(recorder)
        os.replace(tmp_path, fpath)
    except BaseException as err:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        cause = err if isinstance(err, OSError) else getattr(recorder, "write_error", None)
        if cause is not None and cause.errno in NO_SPACE:
            raise DiskFullError(fpath, cause) from None
        raise


def remove_stale_temporaries(folder: str) -> int:
    """Remove the temporaries ``write_atomic`` left in ``folder`` when a process was killed mid-write
    (call it only where no other process writes); returns how many were removed."""
    if not osp.isdir(folder):
        return 0
    stale = [name for name in os.listdir(folder) if TEMPORARY_NAME.match(name)]
    for name in stale:
        os.remove(osp.join(folder, name))
    if stale:
        print(f"Removed {len(stale)} temporary file(s) of an interrupted write from {folder}: {', '.join(stale)}")
    return len(stale)


def write_json(obj: Any, fpath: str) -> None:
    """Write ``obj`` as indented JSON (Dassl's format), atomically."""
    write_atomic(fpath, lambda f: json.dump(obj, f, indent=4, separators=(",", ": ")))


def set_random_seed(seed: int) -> None:
    """Seed python ``random``, numpy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


class UnreadableImageError(OSError):
    """An image file that cannot be decoded; the message is ``Cannot read image <path>: <reason>``."""


def read_image(path: str) -> Image.Image:
    """Read an image as an RGB ``PIL.Image``; a missing or unreadable file raises naming it."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"No image file at {path}") from None
    except (OSError, PIL.UnidentifiedImageError) as err:
        raise UnreadableImageError(f"Cannot read image {path}: {err}") from None


def collect_env_info() -> str:
    """Return torch's environment report plus the Pillow version."""
    from torch.utils.collect_env import get_pretty_env_info

    return get_pretty_env_info() + f"\n        Pillow ({PIL.__version__})"


def listdir_nohidden(path: str, sort: bool = False) -> List[str]:
    """List the entries of ``path`` whose names do not start with a dot."""
    items = [name for name in os.listdir(path) if not name.startswith(".")]
    if sort:
        items.sort()
    return items


def get_most_similar_str_to_a_from_b(a: str, b: Iterable[str]) -> Optional[str]:
    """Return the string in ``b`` most similar to ``a`` (None when ``b`` is empty)."""
    best, best_ratio = None, -1.0
    for candidate in b:
        ratio = difflib.SequenceMatcher(None, a, candidate).ratio()
        if ratio >= best_ratio:
            best, best_ratio = candidate, ratio
    return best


def check_availability(requested: str, available: Sequence[str], what: str = "choice") -> None:
    """Raise a one-line ``ValueError`` listing ``available`` when ``requested`` is not among them."""
    if requested in available:
        return
    names = sorted(available)
    hint = get_most_similar_str_to_a_from_b(requested, names)
    suggestion = f' (did you mean "{hint}"?)' if hint is not None else ""
    raise ValueError(f'Unknown {what} "{requested}"; available: {names}{suggestion}')


def tolist_if_not(x: Any) -> list:
    """Wrap ``x`` in a list unless it already is one."""
    return x if isinstance(x, list) else [x]
