"""Shared pieces of the root entry points: config assembly and one-line errors for bad input."""
import contextlib
import os
import sys
from typing import Callable

from dassl.config import get_cfg_default
from dassl.engine import TRAINER_REGISTRY
from dassl.utils import set_random_seed, setup_logger

from fileio.atomic import NO_SPACE
from trainers.config import extend_cfg


class UsageError(Exception):
    """A bad command line, config or path: reported in one line, without a traceback."""


# Errors the toolbox raises for bad input (missing or malformed files, checkpoints that do not fit):
# the entry points report them in one line.
INPUT_ERRORS = (ValueError, FileNotFoundError, PermissionError, NotADirectoryError, KeyError, IndexError, RuntimeError)


def canonical_trainer_name(name: str) -> str:
    """Accept the hyphenated spelling users type (``CoOp-GRAM``) for the registered ``CoOp_GRAM``."""
    registered = TRAINER_REGISTRY.registered_names()
    for candidate in (name, name.replace("-", "_")):
        if candidate in registered:
            return candidate
    raise UsageError(f"unknown trainer '{name}'; registered trainers: {', '.join(sorted(registered))}")


YAML_EXTENSIONS = (".yaml", ".yml")


def merge_file(cfg, path: str, what: str) -> None:
    """Merge a YAML file into ``cfg``, naming the file when it is missing or has an unknown key.
    Only YAML is read: yacs would execute a ``.py`` config file."""
    if os.path.splitext(path)[1].lower() not in YAML_EXTENSIONS:
        raise UsageError(f"{what} {path}: expected a YAML file ({', '.join(YAML_EXTENSIONS)}); "
                         "Python config files are not accepted (they would be executed)")
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


def start_run(cfg, log_to_file: bool = True) -> None:
    """Seed, check the output folder and start ``log.txt`` there (unless ``log_to_file`` is False, as on
    the ranks > 0 of a distributed run), as every entry point does first."""
    if cfg.SEED >= 0:
        set_random_seed(cfg.SEED)
    check_output_dir(cfg.OUTPUT_DIR)
    if log_to_file:
        setup_logger(cfg.OUTPUT_DIR)


@contextlib.contextmanager
def one_line_errors():
    """Turn the toolbox's input errors (bad dataset folder, checkpoint, split file...) into one line.
    Set GRAM_TRACEBACK=1 to see the traceback instead."""
    try:
        yield
    except INPUT_ERRORS as err:
        if os.environ.get("GRAM_TRACEBACK") == "1":
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(message) from err


UNREADABLE_IMAGE = "Cannot read image "  # how dassl.utils.read_image names a file it cannot decode


@contextlib.contextmanager
def one_line_image_errors():
    """Turn an image that cannot be decoded, met while training or testing (in this process or a DataLoader
    worker, whose error carries the worker's traceback), into one line naming the file and the opt-in skip."""
    try:
        yield
    except OSError as err:
        text = str(err)
        if UNREADABLE_IMAGE not in text or os.environ.get("GRAM_TRACEBACK") == "1":
            raise
        line = text[text.rindex(UNREADABLE_IMAGE):].splitlines()[0]
        raise UsageError(f"{line} (DATASET.SKIP_UNREADABLE_IMAGES True skips unreadable images)") from err


def run_entry_point(main: Callable, parser, program: str) -> None:
    """``main(parsed args)``, exiting with one line ``<program>: error: ...`` on a usage error or a full disk."""
    try:
        main(parser.parse_args())
    except UsageError as err:
        sys.exit(f"{program}: error: {err}")
    except OSError as err:
        if err.errno not in NO_SPACE or os.environ.get("GRAM_TRACEBACK") == "1":
            raise
        sys.exit(f"{program}: error: {err.strerror}")
