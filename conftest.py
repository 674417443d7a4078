"""Make the repository root importable (the toolbox runs from the root, as CoOp does)."""
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# The test models are tiny: one thread is faster than two (no thread hand-offs), and it keeps the
# suite's timing steady when other work shares the machine's two cores.
import torch  # noqa: E402

torch.set_num_threads(1)
