"""Shared Dassl plumbing for CLIP prompt-learning trainers (CoOp family).

A trainer file then holds only its method: the prompt learner and the forward. Here:
loading CLIP with the ``PREC`` handling (fp16 / fp32 / amp, CPU fallback to fp32), freezing
every parameter outside the prompt learner, optimizer / scheduler / registration under the
name ``prompt_learner`` (CoOp's checkpoint layout), the training step (cross-entropy, amp
scaler), CoOp-compatible checkpoint loading
(the frozen prompt-token buffers of upstream CoOp checkpoints are dropped; a checkpoint trained with another
CLIP, named by the fingerprint every checkpoint carries, is refused), the
frozen-image-tower fast path (``CACHE_IMAGE_FEATURES``, see ``feature_cache``).
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from clip.model import CLIP
from dassl.engine import TrainerX
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import load_pretrained_weights
from torch import nn

from trainers.backbone.clip_loader import checkpoint_fingerprint, load_clip_to_cpu
from trainers.dassl_compat import load_checkpoint_file
from trainers.backbone.deep_prompts import VisualEncoder
from trainers.backbone.feature_cache import CachedFeatureLoader, cached_train_loader
from trainers.backbone.precision import (apply_precision, autocast_context, check_precision, make_grad_scaler,
                                         resolve_precision)
from trainers.backbone.prompt_learner import PromptLearner
from trainers.backbone.text_encoder import TextEncoder, encode_prompts_in_chunks

FROZEN_PROMPT_BUFFERS = ("token_prefix", "token_suffix")  # saved by upstream CoOp, rebuilt from class names here
TensorDict = Dict[str, torch.Tensor]  # prompt tensors (or their gradients) by parameter name


def trainable_prompt_parameters(model: nn.Module) -> "OrderedDict[str, nn.Parameter]":
    """The prompt tensors of a prompt method by name (e.g. ``prompt_learner.ctx``): the parameters left
    trainable (CLIP is frozen)."""
    return OrderedDict((name, param) for name, param in model.named_parameters() if param.requires_grad)


def load_clip_for_training(cfg, prec: str, device: torch.device, key: str = "PREC") -> Tuple[CLIP, str]:
    """CLIP named by ``cfg.MODEL.BACKBONE.NAME`` cast for ``prec`` (CPU: fp32); returns
    ``(clip_model, precision actually used)``. Checks ``INPUT.SIZE`` against CLIP's resolution.
    ``key`` names the config key in the one-line message when ``prec`` cannot be honoured."""
    print(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
    clip_model = load_clip_to_cpu(cfg)
    precision = resolve_precision(prec, device, key)
    apply_precision(clip_model, precision)
    resolution = clip_model.visual.input_resolution
    if tuple(cfg.INPUT.SIZE) != (resolution, resolution):
        raise ValueError(f"INPUT.SIZE {tuple(cfg.INPUT.SIZE)} does not match the input resolution {resolution} "
                         f"of CLIP {cfg.MODEL.BACKBONE.NAME}")
    return clip_model, precision


class PromptCLIP(nn.Module):
    """CLIP with a prompt learner (CoOp's CustomCLIP): logits of images against class prompts.

    ``forward`` accepts images ``(B, 3, H, W)`` or, on the cached fast path, image features
    ``(B, embed_dim)`` that the frozen image tower already produced.
    """

    def __init__(self, clip_model: CLIP, prompt_learner: nn.Module, text_chunk: int = 256):
        super().__init__()
        self.prompt_learner = prompt_learner
        self.image_encoder = VisualEncoder(clip_model)
        self.text_encoder = TextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.text_chunk = text_chunk
        self._frozen_text = (None, None)  # (prompt state, text features) reused under no_grad

    @property
    def dtype(self) -> torch.dtype:
        return self.image_encoder.dtype

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Image features (unnormalised); 2-D input is taken as already-encoded features."""
        return images if images.dim() == 2 else self.image_encoder(images)

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        features = self.encode_images(images)
        return features / features.norm(dim=-1, keepdim=True)

    def _encode_class_prompts(self) -> torch.Tensor:
        learner = self.prompt_learner

        def build(rows: torch.Tensor):
            return learner(rows), learner.tokenized_prompts[rows.to(learner.tokenized_prompts.device)]

        features = encode_prompts_in_chunks(self.text_encoder, learner.n_cls, build, self.text_chunk)
        return features / features.norm(dim=-1, keepdim=True)

    def _prompt_state(self) -> tuple:
        """Identifies the current prompt values: version counters miss writes through ``.data``,
        so a checksum of the values is part of the key."""
        return tuple((id(p), p._version, p.device, p.dtype, p.detach().double().sum().item())
                     for p in self.prompt_learner.parameters())

    def class_text_features(self) -> torch.Tensor:
        """Normalised text features of every class prompt, ``text_chunk`` classes per pass.
        Without autograd they are computed once per state of the prompt parameters."""
        if torch.is_grad_enabled():
            return self._encode_class_prompts()
        state = self._prompt_state()
        if self._frozen_text[0] != state:
            self._frozen_text = (state, self._encode_class_prompts())
        return self._frozen_text[1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        image_features = self.image_features(images)
        text_features = self.class_text_features()
        return self.logit_scale.exp() * image_features @ text_features.t()

    def pair_logits(self, images: torch.Tensor, texts: List[str]) -> torch.Tensor:
        """Logits of images against prompts built on ``texts`` instead of the class names
        (GRAM's meta-tasks: captions stand in for class names)."""
        image_features = self.image_features(images)
        prompts, tokenized = self.prompt_learner.prompts_for_texts(list(texts))
        text_features = self.text_encoder(prompts, tokenized)
        text_features = text_features / text_features.norm(dim=-1, keepdim=True)
        return self.logit_scale.exp() * image_features @ text_features.t()


class PromptTrainer(TrainerX):
    """Base of the CLIP prompt trainers; subclasses set ``method_key`` and ``build_custom_clip``."""

    method_key = "COOP"  # the cfg.TRAINER.<method_key> section holding PREC, CACHE_IMAGE_FEATURES, ...
    prompt_module_name = "prompt_learner"  # the only trainable submodule of self.model
    image_tower_frozen = False  # True when prompts never touch the image encoder (GRAM then meta-trains on cached features)

    @property
    def method_cfg(self):
        return self.cfg.TRAINER[self.method_key]

    def check_cfg(self, cfg) -> None:
        check_precision(cfg.TRAINER[self.method_key].PREC)

    def build_custom_clip(self, clip_model: CLIP, classnames: List[str]) -> nn.Module:
        """The method's model; it must hold its learnable prompts in ``self.prompt_module_name``.
        It may read ``self.cfg``, ``self.method_cfg``, ``self.device`` and ``self.precision`` only
        (``build_prompt_model`` calls it outside the data pipeline)."""
        raise NotImplementedError

    @classmethod
    def clip_precision(cls, prec: str) -> str:
        """The precision CLIP is loaded in for ``PREC=prec`` (VPT overrides it: its reference runs CLIP in fp32)."""
        return prec

    @classmethod
    def build_prompt_model(cls, cfg, clip_model: CLIP, classnames: List[str], device="cpu",
                           precision: str = "fp32") -> nn.Module:
        """The method's model without Dassl's data pipeline: training (``build_model``) and GRAM
        meta-training both build it here. ``build_custom_clip`` runs on an instance of this class that
        holds only what model building reads (``cfg``, ``device``, ``precision``), so ``super()`` and
        every hook work; then every parameter outside ``prompt_module_name`` is frozen."""
        builder = cls.__new__(cls)
        builder.cfg, builder.device, builder.precision = cfg, torch.device(device), precision
        model = builder.build_custom_clip(clip_model, classnames)
        for name, param in model.named_parameters():
            param.requires_grad_(cls.prompt_module_name in name)
        return model

    def build_model(self) -> None:
        cfg = self.cfg
        prec = self.clip_precision(self.method_cfg.PREC)
        clip_model, self.precision = load_clip_for_training(cfg, prec, self.device, f"TRAINER.{self.method_key}.PREC")
        self.clip_fingerprint = checkpoint_fingerprint(cfg.MODEL.BACKBONE.NAME)
        print("Building custom CLIP; turning off gradients in both the image and the text encoder")
        self.model = self.build_prompt_model(cfg, clip_model, self.dm.dataset.classnames, self.device, self.precision)
        print(f"Parameters to be updated: {sorted(self.prompt_parameters())}")
        prompt_module = getattr(self.model, self.prompt_module_name)
        if cfg.MODEL.INIT_WEIGHTS:
            load_pretrained_weights(prompt_module, cfg.MODEL.INIT_WEIGHTS)
        self.model.to(self.device)
        self.optim = build_optimizer(prompt_module, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_model(self.prompt_module_name, prompt_module, self.optim, self.sched)
        self.scaler = make_grad_scaler(self.precision, self.device)

    def prompt_parameters(self) -> "OrderedDict[str, nn.Parameter]":
        """The trainable prompt parameters of ``self.model`` by name (``trainable_prompt_parameters``)."""
        return trainable_prompt_parameters(self.model)

    # ------------------------------------------------------------------ training step
    def parse_batch_train(self, batch) -> Tuple[torch.Tensor, torch.Tensor]:
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def compute_loss(self, images: torch.Tensor, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(loss, logits)`` of a training batch (cross-entropy over the class logits)."""
        logits = self.model(images)
        return F.cross_entropy(logits, labels), logits

    def forward_backward(self, batch) -> Dict[str, float]:
        images, labels = self.parse_batch_train(batch)
        with autocast_context(self.precision, self.device):
            loss, logits = self.compute_loss(images, labels)
        self.model_backward_and_update(loss)
        summary = {"loss": loss.item(), "acc": compute_accuracy(logits, labels)[0].item()}
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return summary

    def model_backward(self, loss: torch.Tensor) -> None:
        self.detect_anomaly(loss)
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def model_update(self, names=None) -> None:
        if self.scaler is not None:
            for name in self.get_model_names(names):
                self.scaler.unscale_(self._optims[name])
        if self.scaler is None:
            super().model_update(names)
            return
        for name in self.get_model_names(names):
            self.scaler.step(self._optims[name])
        self.scaler.update()

    # ------------------------------------------------------------------ fast path
    @property
    def uses_feature_cache(self) -> bool:
        return bool(self.method_cfg.get("CACHE_IMAGE_FEATURES", False))

    def before_train(self) -> None:
        super().before_train()
        if self.uses_feature_cache and not isinstance(self.train_loader_x, CachedFeatureLoader):
            views = self.method_cfg.CACHE_VIEWS
            print(f"Caching image features of the training set ({views} augmented view(s))")
            seed = self.cfg.SEED if self.cfg.SEED >= 0 else torch.initial_seed()
            self.train_loader_x = cached_train_loader(self.train_loader_x, self.model.encode_images, views,
                                                      seed, self.device)

    def before_epoch(self) -> None:
        super().before_epoch()
        if isinstance(self.train_loader_x, CachedFeatureLoader):
            self.train_loader_x.set_epoch(self.epoch)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_metadata(self) -> Dict[str, str]:
        """Every prompt checkpoint names the CLIP it was trained with (bundled engine)."""
        return {"clip_fingerprint": self.clip_fingerprint, "backbone": self.cfg.MODEL.BACKBONE.NAME}

    def check_checkpoint_clip(self, checkpoint: dict, model_path: str) -> None:
        """Refuse prompts trained with another CLIP (checkpoints without a fingerprint are not checked)."""
        trained_with = checkpoint.get("clip_fingerprint")
        if trained_with and trained_with != self.clip_fingerprint:
            raise ValueError(
                f"{model_path} was trained with CLIP {checkpoint.get('backbone', '?')} (fingerprint {trained_with}), "
                f"but this run's CLIP is {self.cfg.MODEL.BACKBONE.NAME} (fingerprint {self.clip_fingerprint}); "
                "load it with the CLIP it was trained with")

    def load_model(self, directory: Optional[str], epoch: Optional[int] = None) -> None:
        """Load ``model-best.pth.tar`` (or ``model.pth.tar-<epoch>``) as CoOp does, accepting
        upstream CoOp checkpoints (their frozen prompt-token buffers are dropped)."""
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given")
            return
        model_file = "model-best.pth.tar" if epoch is None else f"model.pth.tar-{epoch}"
        for name in self.get_model_names():
            model_path = osp.join(directory, name, model_file)
            if not osp.exists(model_path):
                raise FileNotFoundError(f'Model not found at "{model_path}"')
            checkpoint = load_checkpoint_file(model_path, self.cfg)
            self.check_checkpoint_clip(checkpoint, model_path)
            state_dict = {k: v for k, v in checkpoint["state_dict"].items() if k not in FROZEN_PROMPT_BUFFERS}
            print(f'Loading weights to {name} from "{model_path}" (epoch = {checkpoint["epoch"]})')
            try:
                self._models[name].load_state_dict(state_dict)
            except RuntimeError as error:
                detail = str(error).strip().splitlines()[-1].strip()
                raise ValueError(f"{model_path} does not fit {name} of {type(self).__name__}: {detail}") from error


def build_class_prompt_learner(clip_model: CLIP, classnames: List[str], method_cfg) -> PromptLearner:
    """CoOp's prompt learner from a ``TRAINER.<METHOD>`` section (N_CTX, CTX_INIT, CSC, CLASS_TOKEN_POSITION)."""
    learner = PromptLearner(
        clip_model, classnames, n_ctx=method_cfg.N_CTX, ctx_init=method_cfg.CTX_INIT,
        class_specific=bool(method_cfg.get("CSC", False)),
        class_token_position=method_cfg.get("CLASS_TOKEN_POSITION", "end"),
    )
    print(f'Initial context: "{learner.prompt_prefix}"')
    print(f"Number of context words (tokens): {learner.n_ctx}")
    return learner
