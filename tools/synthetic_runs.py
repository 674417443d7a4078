"""Synthetic run folders for tests and benchmarks, and a stand-in for ``train.py``.

``write_run`` writes what a finished run leaves: a Dassl-format ``log.txt`` (training lines, ``Finish
training``, the result block) and optionally ``results.json``. Run as a module it imitates ``train.py``
for the sweep scripts (``PYTHON="python -m tools.synthetic_runs" bash scripts/coop/main.sh ...``): it reads
``--output-dir``, ``--seed`` and ``--eval-only`` from the command line, appends the command line as one JSON
line to ``$STUB_RECORD`` when set, and writes a finished run whose accuracy is ``$STUB_ACCURACY`` (default
50 + seed). ``$STUB_FAIL`` set to a substring of the output folder makes that run exit 1 after writing an
unfinished log.
"""
import json
import os
import sys
from typing import Optional

from tools.protocol_card import write_results_json


def result_block(accuracy: float, total: int = 1000) -> str:
    """Dassl's evaluator printout for ``accuracy`` percent of ``total`` test images."""
    correct = round(total * accuracy / 100)
    return (
        f"=> result\n* total: {total:,}\n* correct: {correct:,}\n* accuracy: {accuracy:.2f}%\n"
        f"* error: {100 - accuracy:.2f}%\n* macro_f1: {max(accuracy - 1, 0):.2f}%\n"
    )


def log_text(accuracy: Optional[float], trained: bool = True, finished: bool = True, epochs: int = 2) -> str:
    """A Dassl-style log; ``accuracy=None`` or ``finished=False`` leaves it without a final result."""
    lines = ["Setting fixed seed: 1", "** Config **"]
    if trained:
        lines += [f"epoch [{e + 1}/{epochs}] batch [1/1] time 0.1 loss 1.0 acc 50.0 lr 1.0e-03"
                  for e in range(epochs)]
        if not finished:
            return "\n".join(lines) + "\n"
        lines.append("Finish training")
        lines.append("Deploy the last-epoch model")
    lines.append("Evaluate on the *test* set")
    text = "\n".join(lines) + "\n"
    if accuracy is not None:
        text += result_block(accuracy)
    return text + "Elapsed: 0:00:01\n"


def write_run(run_dir: str, accuracy: float, with_json: bool = False, trained: bool = True,
              fields: Optional[dict] = None, epochs: int = 2) -> str:
    """Write a finished run folder with ``accuracy``; ``with_json`` adds ``results.json``."""
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "log.txt"), "w") as handle:
        handle.write(log_text(accuracy, trained=trained, epochs=epochs))
    if with_json:
        record = {"accuracy": accuracy, "error": 100 - accuracy, "macro_f1": max(accuracy - 1, 0)}
        write_results_json(run_dir, {**(fields or {}), **record})
    return run_dir


def _option(argv: list, name: str) -> Optional[str]:
    return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else None


def stub_train(argv: list) -> int:
    """Imitate ``train.py ARGS``: record the command line, write a run folder, exit 0 (or 1 on STUB_FAIL)."""
    output_dir = _option(argv, "--output-dir")
    if output_dir is None:
        print("stub train.py: --output-dir missing", file=sys.stderr)
        return 2
    record = os.environ.get("STUB_RECORD")
    if record:
        with open(record, "a") as handle:
            handle.write(json.dumps({"argv": argv, "slot": os.environ.get("GRAM_RUNNER_SLOT")}) + "\n")
    failing = os.environ.get("STUB_FAIL")
    if failing and failing in output_dir:
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "log.txt"), "w") as handle:
            handle.write(log_text(None, finished=False))
        return 1
    seed = int(_option(argv, "--seed") or 0)
    accuracy = float(os.environ.get("STUB_ACCURACY", 50 + seed))
    write_run(output_dir, accuracy, trained="--eval-only" not in argv)
    return 0


if __name__ == "__main__":
    sys.exit(stub_train(sys.argv[1:]))
