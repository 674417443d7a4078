"""The test suite's session fixtures: pytest finds them here, so each is set up once per session and no
test module imports them. Plain helpers live in ``helpers_clip``, ``helpers_gram`` and
``prompt_method_checks``; ``slow`` (``pytest.ini``) marks the end-to-end tests."""
import os

import pytest

from helpers_clip import RN_TEST_SIZES
from helpers_gram import cluster_caption_corpus
from testing.tiny_clip import VIT_B16_WIDTHS, ensure_tiny_clip


@pytest.fixture(scope="session")
def tiny_vit_checkpoint(tmp_path_factory) -> str:
    """A tiny ViT CLIP checkpoint in OpenAI's state-dict format."""
    folder = tmp_path_factory.getbasetemp() / "tiny_clip"
    return ensure_tiny_clip(os.path.join(folder, "tiny_vit.pt"), arch="vit", seed=0)


@pytest.fixture(scope="session")
def tiny_rn_checkpoint(tmp_path_factory) -> str:
    """A tiny ModifiedResNet CLIP checkpoint in OpenAI's state-dict format."""
    folder = tmp_path_factory.getbasetemp() / "tiny_clip"
    return ensure_tiny_clip(os.path.join(folder, "tiny_rn.pt"), arch="rn", seed=0, **RN_TEST_SIZES)


@pytest.fixture(scope="session")
def dataset_root(tmp_path_factory) -> str:
    """``DATASET.ROOT`` of the colour fixture (``ClipColorFixture`` writes its images there on first use)."""
    return str(tmp_path_factory.getbasetemp() / "data")


@pytest.fixture(scope="session")
def gram_split(tmp_path_factory, tiny_vit_checkpoint):
    """``(split_file, manifest)`` for the tiny corpus, clustered into 4 domains by CLIP features."""
    return cluster_caption_corpus(str(tmp_path_factory.getbasetemp() / "gram_corpus"), tiny_vit_checkpoint)


@pytest.fixture(scope="session")
def vit_b16_width_checkpoint(tmp_path_factory) -> str:
    """A random CLIP with ViT-B/16's widths and heads, 2 layers per tower and 32-pixel images (OpenAI's format)."""
    folder = tmp_path_factory.getbasetemp() / "tiny_clip"
    return ensure_tiny_clip(os.path.join(folder, "vit_b16_widths.pt"), arch="vit", seed=0, **VIT_B16_WIDTHS)


@pytest.fixture
def honour_precision_on_cpu(monkeypatch):
    """Keep ``PREC fp16`` / ``amp`` on the CPU instead of falling back to fp32, so a test builds and steps the
    dtypes and optimizer states of a GPU run (torch's CPU kernels run half-precision matmuls, convolutions and
    attention; autocast on the CPU computes in bfloat16)."""
    import trainers.backbone.prompt_trainer as prompt_trainer

    monkeypatch.setattr(prompt_trainer, "resolve_precision", lambda prec, device, key="PREC": prec)
