"""Shared pieces of the root entry points: config assembly and one-line errors for bad input."""
import os

from dassl.config import get_cfg_default
from dassl.engine import TRAINER_REGISTRY

from trainers.config import extend_cfg


class UsageError(Exception):
    """A bad command line, config or path: reported in one line, without a traceback."""


# Errors the toolbox raises for bad input (missing or malformed files, checkpoints that do not fit):
# the entry points report them in one line.
INPUT_ERRORS = (ValueError, FileNotFoundError, PermissionError, NotADirectoryError, KeyError, RuntimeError)


def canonical_trainer_name(name: str) -> str:
    """Accept the hyphenated spelling users type (``CoOp-GRAM``) for the registered ``CoOp_GRAM``."""
    registered = TRAINER_REGISTRY.registered_names()
    for candidate in (name, name.replace("-", "_")):
        if candidate in registered:
            return candidate
    raise UsageError(f"unknown trainer '{name}'; registered trainers: {', '.join(sorted(registered))}")


def merge_file(cfg, path: str, what: str) -> None:
    """Merge a YAML file into ``cfg``, naming the file when it is missing or has an unknown key."""
    if not os.path.isfile(path):
        raise UsageError(f"{what} not found: {path}")
    try:
        cfg.merge_from_file(path)
    except KeyError as err:
        raise UsageError(f"{path}: {err.args[0] if err.args else err}") from err


def merge_opts(cfg, opts) -> None:
    """Merge trailing ``KEY VALUE`` pairs, naming an unknown key."""
    try:
        cfg.merge_from_list(opts or [])
    except (KeyError, ValueError, AssertionError) as err:
        raise UsageError(f"command-line option: {err.args[0] if err.args else err}") from err


def default_cfg():
    """Dassl's default tree plus every trainer's keys."""
    cfg = get_cfg_default()
    extend_cfg(cfg)
    return cfg


def check_output_dir(path: str) -> None:
    """Fail early, in one line, when the output folder cannot be created or written."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create output dir {path}: {err.strerror}") from err
    if not os.access(path, os.W_OK):
        raise UsageError(f"output dir is not writable: {path}")
