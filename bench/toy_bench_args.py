"""The command-line options every toy-world benchmark shares: where the demo's world, CLIP and split are."""
import argparse
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_SPLIT = os.path.join(REPO, "output", "demo", "gram", "clusters", "split.json")


def toy_world_parser(description: str, split_file: bool = False) -> argparse.ArgumentParser:
    """A parser (defaults shown in ``--help``) with ``--root`` and ``--clip``, and ``--split-file`` if asked."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--root", default=os.path.join(REPO, "data", "toy"), help="the toy world (make demo)")
    parser.add_argument("--clip", default=None, help="CLIP checkpoint (default ROOT/toy_clip/toy_vit.pt)")
    if split_file:
        parser.add_argument("--split-file", default=DEMO_SPLIT, help="the clustering stage's split (the demo's)")
    return parser
