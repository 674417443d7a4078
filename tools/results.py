"""Read the result of one run folder, and find run folders under a directory.

A run folder is what ``train.py --output-dir`` writes: ``log.txt`` (Dassl's log, with the result block
``=> result`` / ``* total:`` / ``* correct:`` / ``* accuracy: X%`` / ``* error: X%`` / ``* macro_f1: X%``)
and, in this project, ``results.json`` (written by ``tools.protocol_card.write_results_json``).

``results.json`` wins when present. Otherwise the log's final result block is used, the way CoOp's
``parse_test_res.py`` reads the last ``* accuracy`` line after its end signal: in a log that trained
(it has ``epoch [i/n]`` lines) only a block after ``Finish training`` / ``Finished training`` counts (a
block before it is a validation pass, and a training that never finished has no result); in an
evaluation-only log the last block counts. Dassl writes a resumed run's log to ``log.txt-<timestamp>``
beside the first one, so the newest log with a final block is read. ``scripts/common.sh``
(``run_is_done``) applies the same rule in bash.
"""
import json
import os
import re
from dataclasses import dataclass, field
from typing import Optional

RESULTS_JSON = "results.json"
LOG_NAME = "log.txt"
_TAIL_BYTES = 64 * 1024

_FINISH = re.compile(r"^Finish(?:ed)? training", re.MULTILINE)
_EPOCH = re.compile(r"epoch \[\d+/\d+\]")
_BLOCK = re.compile(r"^=> result\s*\n((?:\* [^\n]*\n?)+)", re.MULTILINE)
_ITEM = re.compile(r"^\* ([\w ]+): ([-+\d.,eE]+)%?\s*$", re.MULTILINE)


@dataclass(frozen=True)
class RunResult:
    """The result of one run folder: metrics in percent, and ``fields``: every field of ``results.json``, or
    every ``* <name>: <value>`` line of the log's result block."""

    run_dir: str
    accuracy: float
    error: Optional[float] = None
    macro_f1: Optional[float] = None
    source: str = ""
    fields: dict = field(default_factory=dict)


def _block_metrics(block: str) -> dict[str, float]:
    return {name.strip(): float(value.replace(",", "")) for name, value in _ITEM.findall(block)}


def final_result_block(text: str, test_log: bool = False) -> Optional[dict[str, float]]:
    """Metrics of the final result block of a Dassl log text, or None when it has none.

    ``test_log=True`` takes the last block whatever precedes it (CoOp's ``--test-log``).
    """
    finishes = list(_FINISH.finditer(text))
    if finishes and not test_log:
        text = text[finishes[-1].end():]
    elif not test_log and _EPOCH.search(text):
        return None
    blocks = _BLOCK.findall(text)
    if not blocks:
        return None
    metrics = _block_metrics(blocks[-1])
    return metrics if "accuracy" in metrics else None


def _read_log_text(path: str, test_log: bool) -> str:
    """The log's tail when that is enough to apply the rule, else the whole file."""
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size > _TAIL_BYTES and not test_log:
            handle.seek(size - _TAIL_BYTES)
            tail = handle.read().decode("utf-8", errors="replace")
            if _FINISH.search(tail) or _EPOCH.search(tail):
                return tail
        handle.seek(0)
        return handle.read().decode("utf-8", errors="replace")


def log_files(run_dir: str) -> list[str]:
    """``log.txt`` then Dassl's ``log.txt-<timestamp>`` files of resumed runs, oldest first."""
    try:
        names = os.listdir(run_dir)
    except OSError:
        return []
    logs = sorted(name for name in names if name.startswith(LOG_NAME + "-"))
    if LOG_NAME in names:
        logs.insert(0, LOG_NAME)
    return [os.path.join(run_dir, name) for name in logs]


def read_log_result(run_dir: str, test_log: bool = False) -> Optional[RunResult]:
    """The final result of the newest log in ``run_dir`` that has one, or None."""
    for path in reversed(log_files(run_dir)):
        metrics = final_result_block(_read_log_text(path, test_log), test_log)
        if metrics is not None:
            return RunResult(
                run_dir=run_dir,
                accuracy=metrics["accuracy"],
                error=metrics.get("error"),
                macro_f1=metrics.get("macro_f1"),
                source=path,
                fields=metrics,
            )
    return None


def read_results_json(run_dir: str) -> Optional[RunResult]:
    """The run's ``results.json`` as a RunResult, None when absent; ValueError naming the file if bad."""
    path = os.path.join(run_dir, RESULTS_JSON)
    try:
        with open(path) as handle:
            record = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable JSON results file ({error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("accuracy"), (int, float)):
        raise ValueError(f"{path}: expected a JSON object with a numeric 'accuracy' (percent)")
    return RunResult(
        run_dir=run_dir,
        accuracy=float(record["accuracy"]),
        error=record.get("error"),
        macro_f1=record.get("macro_f1"),
        source=path,
        fields=record,
    )


def read_run(run_dir: str, test_log: bool = False) -> Optional[RunResult]:
    """The run's result: ``results.json`` if present, else the final block of its log; None if neither."""
    return read_results_json(run_dir) or read_log_result(run_dir, test_log)


def is_run_done(run_dir: str) -> bool:
    """True when the run folder holds a result (the check that makes sweeps skip finished runs)."""
    if os.path.isfile(os.path.join(run_dir, RESULTS_JSON)):
        return True
    return read_log_result(run_dir) is not None


def find_run_dirs(root: str) -> list[str]:
    """Every folder under ``root`` (itself included) holding a log or ``results.json``, sorted.

    A run folder's own subfolders (checkpoints, tensorboard) are not searched.
    """
    found = []
    for directory, subdirs, files in os.walk(root):
        if RESULTS_JSON in files or any(name.startswith(LOG_NAME) for name in files):
            found.append(directory)
            subdirs.clear()
        else:
            subdirs.sort()
    return sorted(found)
