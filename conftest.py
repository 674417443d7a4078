"""Make the repository root importable (the toolbox runs from the root, as CoOp does)."""
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
