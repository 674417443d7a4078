"""Tee ``print`` output to ``<output_dir>/log.txt`` (Dassl's ``setup_logger``)."""
import os.path as osp
import sys
import time
from typing import Optional, TextIO

from .tools import mkdir_if_missing

__all__ = ["Logger", "setup_logger"]


class Logger:
    """A stdout replacement that writes everything to the console and to a log file."""

    def __init__(self, fpath: Optional[str] = None, console: Optional[TextIO] = None):
        self.console = console if console is not None else sys.stdout
        self.file = None
        if fpath is not None:
            mkdir_if_missing(osp.dirname(fpath))
            try:
                self.file = open(fpath, "w", buffering=1)
            except OSError as err:
                raise PermissionError(f"Cannot write log file {fpath}: {err.strerror}") from None

    def write(self, msg: str) -> None:
        self.console.write(msg)
        if self.file is not None:
            self.file.write(msg)

    def flush(self) -> None:
        self.console.flush()
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        """Close the log file (the console stays open)."""
        if self.file is not None:
            self.file.close()
            self.file = None

    def __getattr__(self, name: str):
        # isatty, encoding, fileno, ... come from the console
        return getattr(self.console, name)

    def __enter__(self) -> "Logger":
        return self

    def __exit__(self, *args) -> None:
        self.close()


def setup_logger(output: Optional[str] = None) -> None:
    """Send stdout to the console and to ``output`` (a .txt/.log file, or a folder's log.txt).

    An existing log is never overwritten: the new one gets a time-stamp suffix, as in Dassl.
    """
    if output is None:
        return
    if output.endswith(".txt") or output.endswith(".log"):
        fpath = output
    else:
        fpath = osp.join(output, "log.txt")
    if osp.exists(fpath):
        fpath += time.strftime("-%Y-%m-%d-%H-%M-%S")
    console = sys.stdout.console if isinstance(sys.stdout, Logger) else sys.stdout
    if isinstance(sys.stdout, Logger):
        sys.stdout.close()
    sys.stdout = Logger(fpath, console=console)
