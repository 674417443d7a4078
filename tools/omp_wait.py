"""OpenMP threads that sleep, rather than spin, while they wait for work (issue 16, item 5).

torch's CPU kernels run on GNU OpenMP, whose idle threads spin at every barrier by default. When
other processes share the cores, a thread waits for a partner that is not scheduled and burns its
time slice spinning: the demo's tiny-CLIP pretraining then costs about 20x the CPU time per step
(``bench/bench_pretrain_load.py``). ``OMP_WAIT_POLICY=PASSIVE`` makes waiting threads sleep. libgomp
reads it once, when torch is first imported, so entry points call this before importing torch; the
subprocesses they start inherit it. A policy the user set is kept.
"""
import os

WAIT_POLICY = "PASSIVE"


def sleep_while_waiting() -> None:
    """Default ``OMP_WAIT_POLICY`` to ``PASSIVE`` for this process (if torch is not imported yet) and its children."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
