"""TPT (Shu et al., "Test-Time Prompt Tuning for Zero-Shot Generalization in VLMs", NeurIPS 2022).

Per test image: N views (the image itself and N - 1 random resized crops, AugMix'ed for every set
outside the ImageNet family, as TPT does: ``trainers.backbone.tpt_views``) are encoded in one batch
by the frozen image tower; the ``SELECTION_P`` most confident views (lowest prediction entropy)
are kept; the entropy of their averaged prediction (marginal entropy) is minimised w.r.t. the prompt context for ``STEPS`` AdamW steps
(lr ``TRAINER.TPT.LR``); the image is then classified with the tuned prompt, and prompt and
optimizer state are reset before the next image. ``TRAINER.TPT.COOP_INIT`` starts from a CoOp
checkpoint instead of the ``CTX_INIT`` words (TPT+CoOp). Run it with ``train.py --eval-only``;
the test loader has batch size 1 (one image, all its views).
Precision, as TPT's code (fp32 CLIP under autocast): the learnable context and AdamW's moments are
float32 whatever ``PREC`` says; ``PREC fp16`` makes only the frozen encoders half precision (an fp16
context would underflow AdamW's ``(1 - beta2) g^2`` and round its ``eps`` to 0, giving NaN), and the
entropy and logits are computed in float32.
"""
from __future__ import annotations

import copy
from typing import Callable, Dict, List, Optional

import torch
from dassl.engine import TRAINER_REGISTRY
from dassl.utils import load_pretrained_weights
from yacs.config import CfgNode as CN

from trainers.backbone.precision import keep_in_fp32
from trainers.backbone.prompt_learner import PromptLearner
from trainers.backbone.prompt_trainer import PromptCLIP, PromptTrainer
from trainers.backbone.tpt_views import TestTimeViews, uses_augmix
from trainers.config import clip_trainer_keys, config_section

# rewrites ``.grad`` of the named prompt parameters in place, given the test image's feature
GradientRewrite = Callable[[Dict[str, torch.nn.Parameter], torch.Tensor], None]


def view_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each view's class distribution."""
    log_probs = logits.log_softmax(dim=-1)
    return -(log_probs.exp() * log_probs).sum(dim=-1)


def confident_view_indices(logits: torch.Tensor, fraction: float) -> torch.Tensor:
    """Indices of the ``int(N * fraction)`` lowest-entropy views (at least one), as TPT selects."""
    keep = max(1, int(logits.shape[0] * fraction))
    return torch.argsort(view_entropy(logits), descending=False)[:keep]


def marginal_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the views' averaged class distribution."""
    log_probs = logits.log_softmax(dim=-1)
    mean_log = torch.logsumexp(log_probs, dim=0) - torch.log(torch.tensor(float(logits.shape[0])))
    return -(mean_log.exp() * mean_log).sum()


class TestTimeTuner:
    """One TPT episode per test sample on a prompted CLIP whose prompt is ``model.prompt_learner``."""

    __test__ = False  # not a pytest test class

    def __init__(self, model: PromptCLIP, lr: float, steps: int, selection_p: float,
                 rewrite_gradient: Optional[GradientRewrite] = None):
        self.model = model
        self.steps = steps
        self.selection_p = selection_p
        self.rewrite_gradient = rewrite_gradient
        self.named_params = {f"prompt_learner.{n}": p for n, p in model.prompt_learner.named_parameters()
                             if p.requires_grad}
        self.params = list(self.named_params.values())
        self.optimizer = torch.optim.AdamW(self.params, lr=lr)
        self.initial_params = [p.detach().clone() for p in self.params]
        self.initial_optimizer = copy.deepcopy(self.optimizer.state_dict())

    def reset(self) -> None:
        """Restore the prompt and the optimizer state of the start of the episode."""
        with torch.no_grad():
            for param, initial in zip(self.params, self.initial_params):
                param.copy_(initial)
        self.optimizer.load_state_dict(self.initial_optimizer)

    def logits(self, image_features: torch.Tensor) -> torch.Tensor:
        """Class logits in float32 (the encoders may be half precision)."""
        text_features = self.model.class_text_features().float()
        return self.model.logit_scale.exp().float() * image_features.float() @ text_features.t()

    def predict(self, views: torch.Tensor) -> torch.Tensor:
        """Tune on the views of one image, classify the image (view 0), reset; returns ``(1, C)`` logits."""
        with torch.no_grad():
            features = self.model.image_features(views)
        with torch.enable_grad():
            for _ in range(self.steps):
                logits = self.logits(features)
                selected = confident_view_indices(logits.detach(), self.selection_p)
                loss = marginal_entropy(logits[selected])
                self.optimizer.zero_grad()
                loss.backward()
                if self.rewrite_gradient is not None:
                    self.rewrite_gradient(self.named_params, features[:1])
                self.optimizer.step()
        with torch.no_grad():
            prediction = self.logits(features[:1])
        self.reset()
        return prediction


@config_section
def tpt_config(cfg: CN) -> None:
    """TPT's keys (``TRAINER.TPT``)."""
    cfg.TRAINER.TPT = clip_trainer_keys(
        N_CTX=4, CTX_INIT="a photo of a", LR=5e-3, STEPS=1,
        N_VIEWS=64,  # the test image plus N_VIEWS - 1 augmented views
        SELECTION_P=0.1,  # fraction of most confident views kept
        AUGMIX=True,  # TPT's AugMix views for every set outside the ImageNet family (False: crops only)
        COOP_INIT="",  # optional CoOp output dir / checkpoint to start from (TPT+CoOp)
    )


@TRAINER_REGISTRY.register()
class TPT(PromptTrainer):
    """Test-time prompt tuning with the CoOp prompt learner (``TRAINER.TPT``)."""

    method_key = "TPT"
    image_tower_frozen = True

    def check_cfg(self, cfg) -> None:
        super().check_cfg(cfg)
        if cfg.DATALOADER.TEST.BATCH_SIZE != 1:
            raise ValueError("TPT tunes on one test image at a time: set DATALOADER.TEST.BATCH_SIZE 1")

    def build_data_loader(self) -> None:
        """Dassl's loaders, with the test images turned into their views (``TestTimeViews``)."""
        super().build_data_loader()
        cfg = self.cfg
        augmix = uses_augmix(cfg.DATASET.NAME, cfg.TRAINER.TPT.AUGMIX)
        print(f"Test-time views: {'AugMix' if augmix else 'random resized crops'} ({cfg.DATASET.NAME})")
        views = TestTimeViews(cfg.INPUT.SIZE[0], cfg.TRAINER.TPT.N_VIEWS, augmix)
        for loader in (self.val_loader, self.test_loader):
            if loader is not None:
                loader.dataset.transform = views

    def build_custom_clip(self, clip_model, classnames: List[str]) -> PromptCLIP:
        method = self.method_cfg
        learner = keep_in_fp32(PromptLearner(clip_model, classnames, n_ctx=method.N_CTX, ctx_init=method.CTX_INIT))
        if method.COOP_INIT:
            load_pretrained_weights(learner, method.COOP_INIT)
        return PromptCLIP(clip_model, learner, method.TEXT_CHUNK)

    def gradient_rewrite(self) -> Optional[GradientRewrite]:
        """How the test-time gradient is changed before the step (TPT: not at all)."""
        return None

    def build_tuner(self) -> TestTimeTuner:
        """The per-sample tuner, snapshotting the prompt as it is now (after any initialization)."""
        method = self.method_cfg
        return TestTimeTuner(self.model, method.LR, method.STEPS, method.SELECTION_P, self.gradient_rewrite())

    def train(self) -> None:
        """Nothing to train ahead of time: tuning happens per test sample (as ``--eval-only``)."""
        self.test()

    def test(self, split: Optional[str] = None) -> float:
        """Dassl's evaluation, each image classified after its own tuning episode (``model_inference``)."""
        print(f"Test-time prompt tuning: {self.cfg.TRAINER.TPT.N_VIEWS} views per image")
        self.tuner = self.build_tuner()
        return super().test(split)

    def model_inference(self, views: torch.Tensor) -> torch.Tensor:
        """Tune on the views of the one image of the batch, then classify it: ``(1, C)`` logits."""
        return self.tuner.predict(views[0])
