"""A long-lived ``train.py``: runs job after job in one process, so torch's import is paid once per slot.

The job runner (``tools/runner.py``, ``run_protocol.py --persistent-workers``) starts one of these per slot,
in the slot's environment and the sweep's working directory, and writes one JSON request per line to its
stdin: ``{"script": "train.py", "argv": [...], "log": path, "done": path}``. The worker imports the script
as a module (as ``python train.py`` would find it: its folder first on ``sys.path``), calls
``main(build_parser().parse_args(argv))`` with stdout and stderr in ``log``, and then writes the exit
code to ``done`` (the runner polls for it): 0, 2 for a usage error (``train.py: error: ...`` in the log, as
the command line prints it) or 1 with the traceback in the log. Each job seeds itself as a fresh
``train.py`` does (``start_run``), so results equal those of a separate process per job.

Run as a file (``python tools/train_worker.py``): it imports nothing of the toolbox itself.
"""
import importlib
import json
import os
import sys
import traceback


def _script_module(script: str):
    folder = os.path.dirname(os.path.abspath(script))
    if sys.path[0] != folder:
        sys.path.insert(0, folder)
    return importlib.import_module(os.path.splitext(os.path.basename(script))[0])


def run_request(request: dict) -> int:
    """Run one job; return its exit code."""
    saved = sys.stdout, sys.stderr
    with open(request["log"], "a", buffering=1) as log:
        sys.stdout = sys.stderr = log
        try:
            module = _script_module(request["script"])
            module.main(module.build_parser().parse_args(request["argv"]))
            return 0
        except SystemExit as exit_request:
            code = exit_request.code
            if code is None or isinstance(code, int):
                return code or 0
            print(code, file=log)
            return 1
        except Exception as err:  # noqa: BLE001  (a job's failure must not end the worker)
            if type(err).__name__ == "UsageError":  # tools.cli: one line, as run_entry_point prints it
                print(f"{os.path.basename(request['script'])}: error: {err}", file=log)
                return 2
            traceback.print_exc(file=log)
            return 1
        finally:
            if sys.stdout is not log and hasattr(sys.stdout, "close"):
                sys.stdout.close()  # the Dassl logger the job installed (the console, ``log``, stays open)
            sys.stdout, sys.stderr = saved


def write_exit_code(path: str, code: int) -> None:
    partial = f"{path}.partial"
    with open(partial, "w") as handle:
        handle.write(str(code))
    os.replace(partial, path)


def main() -> None:
    sys.path.pop(0)  # this file's folder (tools/) must not shadow top-level modules
    for line in sys.stdin:
        if line.strip():
            request = json.loads(line)
            write_exit_code(request["done"], run_request(request))


if __name__ == "__main__":
    main()
