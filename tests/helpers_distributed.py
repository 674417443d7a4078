"""Launching the entry points as a user does under torchrun (gloo on this CPU machine)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subprocess_env() -> dict:
    """This environment with the repository (and its bundled engine) importable, one thread per process."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "third_party"), ROOT]),
                OMP_NUM_THREADS="1")


def torchrun(nproc: int, *arguments: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node nproc arguments...`` from the repository root."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               *arguments]
    return subprocess.run(command, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)
