"""The protocol card each run writes into its log, and the ``results.json`` record beside it.

The card says what ran, so a number can be traced to its settings: trainer, config file, dataset, shots,
seed, class subsample, CLIP backbone and a fingerprint of its weights file, the GRAM meta checkpoint's
fingerprint, and the git commit. A fingerprint is the first 16 hex digits of the file's sha256
(``fileio.hashing.file_fingerprint``). ``train.py`` calls ``protocol_card`` after building the config and
``write_results_json(output_dir, results_record(cfg, args, results))`` after testing.
"""
import json
import os
import subprocess
from functools import lru_cache
from typing import Any

from fileio.atomic import write_text_atomically
from fileio.hashing import file_fingerprint
from tools.results import RESULTS_JSON

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORD_KEYS = (
    "trainer", "dataset", "config", "shots", "seed", "subsample", "split", "accuracy", "error", "macro_f1",
    "backbone", "clip_fingerprint", "meta_ckpt_fingerprint", "git_commit",
)


def _clip_weights_path(backbone_name: str) -> str:
    """The file an OpenAI model name or a path refers to (``$GRAM_CLIP_CACHE`` or ``~/.cache/clip``)."""
    if os.path.isfile(backbone_name):
        return backbone_name
    try:
        from clip.clip import _MODELS
        filename = os.path.basename(_MODELS[backbone_name])
    except (ImportError, KeyError):
        filename = backbone_name.replace("/", "-") + ".pt"
    cache = os.environ.get("GRAM_CLIP_CACHE") or os.path.expanduser("~/.cache/clip")
    return os.path.join(cache, filename)


def clip_fingerprint(backbone_name: str) -> str:
    """Fingerprint of the CLIP weights ``backbone_name`` loads; ``unavailable (<reason>)`` if unreadable."""
    try:
        from trainers.backbone.clip_loader import checkpoint_fingerprint
    except ImportError:
        checkpoint_fingerprint = None
    try:
        if checkpoint_fingerprint is not None:
            return checkpoint_fingerprint(backbone_name)
        return file_fingerprint(_clip_weights_path(backbone_name))
    except (OSError, ValueError, RuntimeError) as error:
        return f"unavailable ({type(error).__name__}: {error})"


def meta_ckpt_fingerprint(cfg) -> str:
    """Fingerprint of ``cfg.TRAINER.GRAM.META_CKPT``; ``none`` when unset or the config has no GRAM keys."""
    path = _get(cfg, "TRAINER.GRAM.META_CKPT", "")
    if not path:
        return "none"
    try:
        return file_fingerprint(path)
    except OSError as error:
        return f"unavailable ({path}: {error.strerror})"


@lru_cache(maxsize=None)
def git_commit(repo_root: str = REPO_ROOT) -> str:
    """``git rev-parse HEAD`` of the repository, ``unknown`` outside a git checkout or before a commit."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = completed.stdout.strip()
    return commit if completed.returncode == 0 and commit else "unknown"


def _get(cfg, dotted: str, default: Any = None) -> Any:
    node = cfg
    for key in dotted.split("."):
        if not hasattr(node, key):
            return default
        node = getattr(node, key)
    return node


def card_fields(cfg, args) -> dict:
    backbone = _get(cfg, "MODEL.BACKBONE.NAME", "")
    return {
        "trainer": _get(cfg, "TRAINER.NAME", "") or getattr(args, "trainer", ""),
        "config": getattr(args, "config_file", "") or "",
        "dataset_config": getattr(args, "dataset_config_file", "") or "",
        "dataset": _get(cfg, "DATASET.NAME", ""),
        "shots": _get(cfg, "DATASET.NUM_SHOTS", -1),
        "seed": _get(cfg, "SEED", -1),
        "subsample": _get(cfg, "DATASET.SUBSAMPLE_CLASSES", "all"),
        "split": _get(cfg, "TEST.SPLIT", "test"),
        "backbone": backbone,
        "clip_fingerprint": clip_fingerprint(backbone) if backbone else "none",
        "meta_ckpt": _get(cfg, "TRAINER.GRAM.META_CKPT", "") or "none",
        "meta_ckpt_fingerprint": meta_ckpt_fingerprint(cfg),
        "git_commit": git_commit(),
    }


def protocol_card(cfg, args) -> str:
    """A block of ``key: value`` lines, framed, for the top of the run's log."""
    fields = card_fields(cfg, args)
    width = max(len(key) for key in fields)
    lines = [f"{key.ljust(width)} : {value}" for key, value in fields.items()]
    return "\n".join(["=== protocol card ===", *lines, "====================="])


def results_record(cfg, args, results: dict) -> dict:
    """The ``results.json`` record: the card's fields and the test metrics (percent).

    ``results`` is what the Dassl evaluator returns (``accuracy``, ``error_rate`` or ``error``, ``macro_f1``).
    """
    if "accuracy" not in results:
        raise ValueError(f"results_record: expected an 'accuracy' in the test results, got keys {sorted(results)}")
    fields = card_fields(cfg, args)
    record = {key: fields[key] for key in RECORD_KEYS if key in fields}
    record["accuracy"] = float(results["accuracy"])
    error = results.get("error", results.get("error_rate"))
    record["error"] = float(error) if error is not None else 100.0 - record["accuracy"]
    record["macro_f1"] = float(results["macro_f1"]) if results.get("macro_f1") is not None else None
    return {key: record[key] for key in RECORD_KEYS}


def write_results_json(output_dir: str, record: dict) -> str:
    """Write ``<output_dir>/results.json`` atomically."""
    return write_text_atomically(os.path.join(output_dir, RESULTS_JSON), json.dumps(record, indent=2) + "\n")
