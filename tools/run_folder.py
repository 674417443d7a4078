"""One run per output folder: the settings that make a run, recorded in the folder, and a lock.

``train.py`` and ``meta_train.py`` resume from the checkpoints they find in their output folder. Without a
check, a run with another seed, shot count, config or CLIP started into a finished folder would "resume"
someone else's weights and report them under its own settings. So the first run in a folder writes
``run_settings.json`` (seed, shots, config files, trainer, dataset, CLIP and meta-checkpoint fingerprints, the
OPTIM section but its MAX_EPOCH, the TRAINER section), and a later run there with other settings is refused
in one line naming the settings that differ. Raising ``OPTIM.MAX_EPOCH`` to train a finished run
further stays allowed. ``--eval-only`` runs load a model instead of resuming one: they take the lock but
record nothing.

The lock (``.run.lock``, ``fcntl.flock``) is held from the start of a run to its end, so a second process
started into a folder in use is refused at once instead of resuming from the first one's checkpoints. The
kernel releases it when the process ends, however it ends (``kill -9`` too).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from typing import Iterator, Optional

from fileio.atomic import write_text_atomically
from fileio.hashing import file_fingerprint
from tools.cli import UsageError, check_output_dir
from tools.protocol_card import card_fields

SETTINGS_FILE = "run_settings.json"
LOCK_FILE = ".run.lock"
SHOWN_DIFFERENCES = 3
CARD_SETTINGS = ("trainer", "dataset", "dataset_config", "config", "seed", "shots", "subsample", "clip_fingerprint",
                 "meta_ckpt_fingerprint")


class RunFolderError(UsageError):
    """A folder in use by another process, or holding a run with other settings (one line)."""


def _plain(node) -> object:
    """A yacs node as plain JSON values (tuples as lists, so a recorded setting compares equal)."""
    return json.loads(json.dumps(node, sort_keys=True, default=list))


def _optim_settings(cfg) -> dict:
    optim = _plain(cfg.OPTIM)
    optim.pop("MAX_EPOCH", None)
    return optim


def train_settings(cfg, args) -> dict:
    """What a ``train.py`` run in a folder must keep to resume there."""
    fields = card_fields(cfg, args)
    return {"program": "train.py", **{key: fields[key] for key in CARD_SETTINGS},
            "optim": _optim_settings(cfg), "trainer_settings": _plain(cfg.TRAINER)}


def meta_train_settings(cfg, args) -> dict:
    """What a ``meta_train.py`` run in a folder must keep to resume there."""
    from tools.protocol_card import clip_fingerprint
    from clustering.split_file import header_path

    split = header_path(cfg.TRAINER.GRAM.SPLIT_FILE) if cfg.TRAINER.GRAM.SPLIT_FILE else ""
    return {"program": "meta_train.py", "config": args.config_file or "", "seed": cfg.SEED,
            "clip_fingerprint": clip_fingerprint(cfg.MODEL.BACKBONE.NAME),
            "split_fingerprint": file_fingerprint(split) if os.path.isfile(split) else "none",
            "optim": _optim_settings(cfg), "trainer_settings": _plain(cfg.TRAINER)}


def _differences(recorded: dict, settings: dict, prefix: str = "") -> list[str]:
    """``"<key> is <old> there but <new> now"`` for every setting that differs, in the order of ``settings``."""
    found = []
    for key in list(settings) + [key for key in recorded if key not in settings]:
        old, new = recorded.get(key), settings.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            found.append(f"{prefix}{key} is {old!r} there but {new!r} now")
    return found


def check_or_record_settings(folder: str, settings: dict) -> None:
    """Record ``settings`` in ``folder``, or refuse them when the folder holds a run with other settings."""
    path = os.path.join(folder, SETTINGS_FILE)
    if not os.path.isfile(path):
        write_text_atomically(path, json.dumps(settings, indent=1, sort_keys=True) + "\n")
        return
    try:
        with open(path) as handle:
            recorded = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise RunFolderError(f"{path} is not readable JSON ({error}); delete it if the folder is yours") from None
    differences = _differences(recorded, settings)
    if differences:
        shown = "; ".join(differences[:SHOWN_DIFFERENCES])
        more = f"; and {len(differences) - SHOWN_DIFFERENCES} more" if len(differences) > SHOWN_DIFFERENCES else ""
        raise RunFolderError(f"output dir {folder} holds a run with other settings ({shown}{more}): it cannot be "
                             "resumed with these; choose another --output-dir, or delete the folder to start over")


def _acquire_lock(folder: str):
    handle = open(os.path.join(folder, LOCK_FILE), "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise RunFolderError(f"output dir {folder} is in use by another process (pid {owner}); wait for it to end "
                             "or choose another --output-dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


@contextlib.contextmanager
def claimed_run_folder(folder: str, settings: Optional[dict]) -> Iterator[None]:
    """Hold ``folder``'s lock for the block; record or check ``settings`` (None: lock only)."""
    check_output_dir(folder)
    lock = _acquire_lock(folder)
    try:
        if settings is not None:
            check_or_record_settings(folder, settings)
        yield
    finally:
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        lock.close()
