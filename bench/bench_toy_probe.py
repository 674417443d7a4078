"""How much of each toy class set the frozen toy CLIP's image features hold: a linear probe's ceiling.

    python bench/bench_toy_probe.py          # after `make demo` (its world and CLIP)

A prompt changes only the text side (CoOp) or adds tokens to a frozen image tower; it cannot make the image
features separate classes they do not separate. This diagnostic fits a multinomial logistic regression
(scikit-learn, L2-normalised features, C = 10) on every training image of a toy dataset's split (all
classes, not a few shots) and reports its test accuracy beside zero-shot CLIP and chance. It chooses no
setting: it explains where the tuned methods' numbers stop (README, "Why it falls short").
"""
import os
import sys
import time
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "third_party")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from tabulate import tabulate  # noqa: E402
from toy_bench_args import toy_world_parser  # noqa: E402  (bench/ is the script's folder, first on sys.path)

from datasets.base import read_split  # noqa: E402
from datasets.toy_world import build_heldout_datasets  # noqa: E402
from datasets.toy_world.pretrain import images_to_tensor  # noqa: E402
from datasets.toy_world.specs import DATASET_SPECS, HELDOUT_SPECS  # noqa: E402
from datasets.toy_world.toy_clip import read_images  # noqa: E402
from datasets.toy_world.zeroshot import zero_shot_accuracy  # noqa: E402
from trainers.backbone.clip_loader import load_clip  # noqa: E402

SPECS = {**DATASET_SPECS, **HELDOUT_SPECS}
DATASETS = ["ToyShapes", "ToyColorShapes", "ToySizeShapes", "ToyPositions", "ToyColors"]


@torch.no_grad()
def image_features(model, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    chunks = [F.normalize(model.encode_image(images_to_tensor(images[start:start + batch_size])), dim=-1)
              for start in range(0, len(images), batch_size)]
    return torch.cat(chunks).numpy()


def probe_row(model, root: str, name: str) -> List[str]:
    spec = SPECS[name]
    dataset_dir = os.path.join(root, spec.dataset_dir)
    train, _, test = read_split(os.path.join(dataset_dir, spec.split_filename), os.path.join(dataset_dir, "images"))
    sets: Dict[str, tuple] = {}
    for split, items in (("train", train), ("test", test)):
        images = read_images([item.impath for item in items])
        sets[split] = (images, np.asarray([item.label for item in items]))
    classnames = [spec.classnames[label] for label in range(len(spec.classnames))]
    zero_shot = zero_shot_accuracy(model, sets["test"][0], sets["test"][1], classnames)
    probe = LogisticRegression(C=10.0, max_iter=2000).fit(image_features(model, sets["train"][0]), sets["train"][1])
    accuracy = 100.0 * probe.score(image_features(model, sets["test"][0]), sets["test"][1])
    return [name, len(classnames), len(train), f"{100.0 / len(classnames):.1f}", f"{zero_shot:.1f}", f"{accuracy:.1f}"]


def main() -> None:
    parser = toy_world_parser(__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS, choices=sorted(SPECS))
    args = parser.parse_args()
    clip_path = args.clip or os.path.join(args.root, "toy_clip", "toy_vit.pt")
    if not os.path.isfile(clip_path):
        raise SystemExit(f"{clip_path}: the toy CLIP is missing; run `make demo` first or pass --root/--clip")
    build_heldout_datasets(args.root, progress=False)
    torch.set_num_threads(1)
    started = time.time()
    model = load_clip(clip_path).float().eval()
    rows = [probe_row(model, args.root, name) for name in args.datasets]
    print(tabulate(rows, headers=["dataset", "classes", "train images", "chance", "zero-shot", "linear probe"],
                   tablefmt="github"))
    print(f"{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
