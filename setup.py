"""Install GRAM-Dassl's dependencies and, when no Dassl is importable, the bundled engine.

Like CoOp, the toolbox itself (``trainers/``, ``datasets/``, the entry points) runs from the
repository root; only the Dassl-compatible engine under ``third_party/`` is installed as the
``dassl`` package, and only when upstream Dassl.pytorch is not already installed. Set
``GRAM_DASSL_BUNDLE=1`` (or ``0``) to force the choice. Install with
``pip install --no-build-isolation -e .`` so the check sees the target environment.
"""
import importlib.util
import os

from setuptools import find_packages, setup

ENGINE_DIR = "third_party"


def bundle_engine() -> bool:
    """True when the bundled engine should be installed as ``dassl``."""
    forced = os.environ.get("GRAM_DASSL_BUNDLE")
    if forced in ("0", "1"):
        return forced == "1"
    spec = importlib.util.find_spec("dassl")
    if spec is None:
        return True
    # Our own engine, installed earlier: keep (re)installing it.
    origin = os.path.realpath(spec.origin or "")
    return os.path.realpath(ENGINE_DIR) in origin


packages = find_packages(ENGINE_DIR, include=["dassl", "dassl.*"]) if bundle_engine() else []

setup(
    name="gram-dassl",
    version="0.1.0",
    description="Gradient-Regulated Meta-prompt learning (GRAM) for CLIP on the CoOp/Dassl toolbox",
    python_requires=">=3.10",
    package_dir={"": ENGINE_DIR},
    packages=packages,
    install_requires=[
        "torch==2.14.1",
        "torchvision==0.29.1",
        "openai-clip",
        "setuptools>=77,<81",
        "yacs",
        "faiss-cpu",
        "numpy",
        "tqdm",
        "tabulate",
        "matplotlib",
        "tensorboard",
        "Pillow",
        "scipy",
    ],
    extras_require={
        "gpu": ["faiss-gpu-cu12"],
        "slurm": ["submitit"],
        # open_clip backbones (MODEL.BACKBONE.NAME open_clip:<model>[@<pretrained>]); never needed for OpenAI's CLIP
        "open_clip": ["open_clip_torch>=3.3"],
        "test": ["pytest", "scikit-learn", "open_clip_torch>=3.3", "submitit"],
    },
)
