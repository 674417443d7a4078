"""Launching the entry points in new processes as a user does (and under torchrun: gloo on this CPU machine)."""
import subprocess
import sys

from helpers_clip import REPO as ROOT
from helpers_clip import entry_point_env


def corpus_and_tiny_clip(root, n: int, n_corrupt: int):
    """A TSV corpus of ``n`` pairs (``n_corrupt`` unreadable images) under ``root`` and a tiny CLIP checkpoint."""
    from datasets.fixtures import build_corpus_fixture
    from testing.tiny_clip import build_tiny_clip, save_clip_state_dict

    corpus = build_corpus_fixture(str(root / "corpus"), n=n, fmt="tsv", n_corrupt=n_corrupt)
    checkpoint = save_clip_state_dict(build_tiny_clip(embed_dim=64, image_resolution=32), str(root / "tiny_clip.pt"))
    return corpus, checkpoint


def torchrun(nproc: int, *arguments: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node nproc arguments...`` from the repository root."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               *arguments]
    return subprocess.run(command, cwd=ROOT, env=entry_point_env(), capture_output=True, text=True, timeout=timeout)
