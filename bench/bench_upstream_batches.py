"""Batches of the bundled engine against upstream Dassl.pytorch's, same seed, with and without workers.

    python bench/bench_upstream_batches.py --dassl /path/to/Dassl.pytorch [--epochs 2]

Runs the same loop in two subprocesses, one importing upstream's ``dassl`` (its optional imports gdown,
wilds and pandas, unused here, are stubbed), one the bundled engine: ``torch.manual_seed(7)``, a
``RandomSampler`` loader over ten 40-pixel images with Dassl's train transforms (random resized crop,
flip, normalize), batch 2, for ``--epochs`` epochs, recording each batch's indices and the sum of its
augmented images, and the next draw of the global generator after the loop. Prints, per
``NUM_WORKERS``, whether the two records are identical and the first difference otherwise.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUBS = {"gdown.py": "", "pandas.py": "", os.path.join("wilds", "__init__.py"): "get_dataset = None\n"}


def record(workers: int, epochs: int, image_dir: str) -> list:
    """The loop, in this process, with whichever ``dassl`` is importable."""
    import numpy as np
    import torch
    from PIL import Image

    from dassl.config import get_cfg_default
    from dassl.data.data_manager import build_data_loader
    from dassl.data.datasets import Datum
    from dassl.data.transforms import build_transform

    rng = np.random.default_rng(0)
    paths = []
    for index in range(10):
        path = os.path.join(image_dir, f"{index}.png")
        Image.fromarray(rng.integers(0, 255, (40, 40, 3)).astype(np.uint8)).save(path)
        paths.append(path)
    cfg = get_cfg_default()
    cfg.INPUT.SIZE = (32, 32)
    cfg.INPUT.TRANSFORMS = ["random_resized_crop", "random_flip", "normalize"]
    cfg.DATALOADER.NUM_WORKERS = workers
    cfg.USE_CUDA = False
    data = [Datum(impath=path, label=index % 3, classname=str(index % 3)) for index, path in enumerate(paths)]
    loader = build_data_loader(cfg, sampler_type="RandomSampler", data_source=data, batch_size=2,
                               tfm=build_transform(cfg, is_train=True), is_train=True)
    torch.manual_seed(7)
    batches = [[batch["index"].tolist(), float(batch["img"].sum())] for _ in range(epochs) for batch in loader]
    return batches + [float(torch.rand(1))]


def run_side(pythonpath: list, workers: int, epochs: int, work: str) -> list:
    image_dir = tempfile.mkdtemp(dir=work)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(pythonpath))
    output = subprocess.run([sys.executable, os.path.abspath(__file__), "--record", str(workers), "--epochs",
                             str(epochs), "--image-dir", image_dir], check=True, capture_output=True, text=True,
                            env=env, cwd=work).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dassl", help="a checkout of KaiyangZhou/Dassl.pytorch")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per loop")
    parser.add_argument("--record", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--image-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.record is not None:
        print(json.dumps(record(args.record, args.epochs, args.image_dir)))
        return
    if not args.dassl or not os.path.isfile(os.path.join(args.dassl, "dassl", "data", "data_manager.py")):
        parser.error("--dassl must name a Dassl.pytorch checkout (with dassl/data/data_manager.py)")
    work = tempfile.mkdtemp(prefix="upstream_batches_")
    stubs = os.path.join(work, "stubs")
    for relpath, text in STUBS.items():
        os.makedirs(os.path.dirname(os.path.join(stubs, relpath)), exist_ok=True)
        with open(os.path.join(stubs, relpath), "w") as file:
            file.write(text)
    for workers in (0, 2):
        upstream = run_side([os.path.abspath(args.dassl), stubs], workers, args.epochs, work)
        bundled = run_side([os.path.join(REPO, "third_party")], workers, args.epochs, work)
        first = next((i for i, (a, b) in enumerate(zip(upstream, bundled)) if a != b), None)
        verdict = "identical" if upstream == bundled else f"differ from record {first}: {upstream[first]} vs {bundled[first]}"
        print(f"NUM_WORKERS {workers}: {len(upstream) - 1} batches over {args.epochs} epochs + next global draw: {verdict}")


if __name__ == "__main__":
    main()
