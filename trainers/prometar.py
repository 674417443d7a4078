"""ProMetaR (Park et al., "Prompt Learning via Meta-Regularization", CVPR 2024).

Prompts: independent vision-language prompts (IVLP): a text context of ``N_CTX_TEXT`` tokens
plus deep text prompts up to ``PROMPT_DEPTH_TEXT``, and ``N_CTX_VISION`` visual tokens per image
layer up to ``PROMPT_DEPTH_VISION`` (``trainers.vl_prompts``).
Regularizer (PromptSRC's): ``R = TEXT_LOSS_WEIGHT * L1(text features, zero-shot text features)
+ IMAGE_LOSS_WEIGHT * L1(image features, zero-shot image features)``, all L2-normalised; the
zero-shot text features are the mean of frozen CLIP's features over the toolbox's prompt ensemble
(``templates.ensemble_templates``: 7-8 templates, where the authors average 60 ImageNet ones).
Meta-regularizer ("v-net"): for each prompt tensor a gate ``gamma = sigmoid(W2 W1 [g_ce; g_R])``
(two bias-free linear layers, hidden size ``numel // DIM_RATE``, each gate value shared by
``DIM_RATE`` consecutive entries; the authors' code repeats each value 8 times, its DIM_RATE)
modulates the regularizer's gradient: ``g = g_ce + gamma * g_R``.
Each training step, as the authors' code does:
1. on the whole batch, the prompts take one optimizer step (``OPTIM``) along ``g``;
2. virtual task: the samples of one random class of the batch form the query set, the rest the
   support set (skipped when the batch has a single class); inner (MAML) step
   ``theta' = theta - ADAPT_LR * g_support`` (second order, or first order with
   ``FAST_ADAPTATION``);
3. task augmentation: each query image's features (under ``theta'``) are mixed with those of a
   random support image, ``lam ~ Beta(MIXUP_ALPHA, MIXUP_BETA)``, and the query loss is the
   lam-weighted cross-entropy on both labels, scaled by ``LR_RATIO``;
4. its gradient updates the prompts (``OPTIM``) and the regulator (``OPTIM_VNET``).
Precision as ProMetaR's code: the text context ``ctx`` follows CLIP's dtype; the deep text prompts
and the visual prompts are float32 whatever ``PREC`` (``trainers.vl_prompts``).
The v-net's learning rate follows the reference by default (``VNET_LR_SCHEDULE reference``): its
scheduler is built but never stepped, so it trains at its warm-up value ``OPTIM_VNET.WARMUP_CONS_LR``
(1e-6 in the ViT-B/16 config) for all epochs, the setting behind the published numbers;
``VNET_LR_SCHEDULE stepped`` follows ``OPTIM_VNET``'s schedule instead (a cosine from 2.5e-4).
Choices of this implementation: the regulator is registered as a Dassl model named
``regulator`` (checkpointed with the prompts); ``g_R`` is
the gradient of the summed regularizer, which for IVLP's independent prompts equals the
authors' text-gradient for text prompts and image-gradient for visual prompts; ``amp`` runs
the forwards under autocast without gradient scaling.
"""
from typing import Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from clip.model import CLIP
from dassl.engine import TRAINER_REGISTRY
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer
from torch import nn
from torch.func import functional_call
from yacs.config import CfgNode as CN

from trainers.backbone.attention import twice_differentiable
from trainers.backbone.precision import autocast_context
from trainers.backbone.prompt_trainer import PromptTrainer, TensorDict
from trainers.backbone.templates import ensemble_templates, fill_template
from trainers.backbone.text_encoder import encode_texts
from trainers.config import clip_trainer_keys, config_section
from trainers.vl_prompts import DeepPromptCLIP, IndependentPrompts, require_prompts

VNET_LR_SCHEDULES = ("reference", "stepped")


def zero_shot_text_features(clip_model: CLIP, classnames: List[str], templates: List[str], chunk: int) -> torch.Tensor:
    """Frozen CLIP's class text features averaged over ``templates`` (normalised)."""
    features = torch.stack([encode_texts(clip_model, fill_template(t, classnames), chunk) for t in templates]).mean(0)
    return features / features.norm(dim=-1, keepdim=True)


class RegularizedCLIP(DeepPromptCLIP):
    """IVLP-prompted CLIP that also gives frozen zero-shot CLIP's features, the regularizer's targets."""

    def __init__(self, clip_model: CLIP, prompt_learner: IndependentPrompts, zero_shot_text: torch.Tensor,
                 text_chunk: int = 256):
        super().__init__(clip_model, prompt_learner, text_chunk)
        self.register_buffer("zero_shot_text_features", zero_shot_text, persistent=False)

    @torch.no_grad()
    def zero_shot_image_features(self, images: torch.Tensor) -> torch.Tensor:
        features = self.image_encoder(images)
        return features / features.norm(dim=-1, keepdim=True)

    def regularized_losses(self, images: torch.Tensor, labels: torch.Tensor, text_weight: float,
                           image_weight: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(cross-entropy, regularizer, logits)`` of a labelled batch."""
        image_features = self.image_features(images)
        text_features = self.class_text_features()
        logits = self.logit_scale.exp() * image_features @ text_features.t()
        regularizer = (text_weight * F.l1_loss(text_features, self.zero_shot_text_features.type(text_features.dtype))
                       + image_weight * F.l1_loss(image_features, self.zero_shot_image_features(images)))
        return F.cross_entropy(logits, labels), regularizer, logits

    def mixed_logits(self, images: torch.Tensor, partners: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """Logits of the image features ``lam * f(images) + (1 - lam) * f(partners)`` (manifold mixup)."""
        features = self.encode_images(torch.cat([images, partners]))
        own, other = features.split(images.shape[0])
        lam = lam.type(features.dtype).unsqueeze(-1)
        mixed = lam * own + (1 - lam) * other
        mixed = mixed / mixed.norm(dim=-1, keepdim=True)
        return self.logit_scale.exp() * mixed @ self.class_text_features().t()


class _MixedLogits(nn.Module):
    """Lets ``functional_call`` evaluate ``RegularizedCLIP.mixed_logits`` with adapted prompts."""

    def __init__(self, model: RegularizedCLIP):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, partners: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        return self.model.mixed_logits(images, partners, lam)


class RegularizerGate(nn.Module):
    """``g_ce + sigmoid(W2 W1 [g_ce; g_R]) * g_R`` for one prompt tensor."""

    def __init__(self, numel: int, dim_rate: int):
        super().__init__()
        if dim_rate < 1 or numel % dim_rate:
            raise ValueError(f"TRAINER.PROMETAR.DIM_RATE={dim_rate} must divide the prompt size {numel}")
        hidden = numel // dim_rate
        self.dim_rate = dim_rate
        self.gate = nn.Sequential(nn.Linear(2 * numel, hidden, bias=False), nn.Linear(hidden, hidden, bias=False))

    def forward(self, task_grad: torch.Tensor, reg_grad: torch.Tensor) -> torch.Tensor:
        dtype = self.gate[0].weight.dtype
        both = torch.cat([task_grad.flatten(), reg_grad.flatten()]).type(dtype).unsqueeze(0)
        gamma = torch.sigmoid(self.gate(both)).repeat_interleave(self.dim_rate, dim=-1).view(task_grad.shape)
        return task_grad + gamma.type(task_grad.dtype) * reg_grad


class MetaRegularizer(nn.Module):
    """The v-net: one ``RegularizerGate`` per prompt tensor, keyed by the tensor's name."""

    def __init__(self, prompt_params: Mapping[str, torch.Tensor], dim_rate: int):
        super().__init__()
        self.gates = nn.ModuleDict({self.key(name): RegularizerGate(param.numel(), dim_rate)
                                    for name, param in prompt_params.items()})

    @staticmethod
    def key(name: str) -> str:
        return name.replace(".", "__")

    def forward(self, task_grads: TensorDict, reg_grads: TensorDict) -> TensorDict:
        return {name: self.gates[self.key(name)](grad, reg_grads[name]) for name, grad in task_grads.items()}


def loss_gradients(params: Mapping[str, torch.Tensor], task_loss: torch.Tensor, regularizer: torch.Tensor,
                   create_graph: bool) -> Tuple[TensorDict, TensorDict]:
    """Gradients of the task loss and of the regularizer with respect to ``params`` (zeros if unused)."""
    names, tensors = list(params), list(params.values())

    def grads(loss: torch.Tensor, retain: bool) -> TensorDict:
        found = torch.autograd.grad(loss, tensors, retain_graph=retain, create_graph=create_graph, allow_unused=True)
        return {n: torch.zeros_like(t) if g is None else g for n, t, g in zip(names, tensors, found)}

    return grads(task_loss, True), grads(regularizer, create_graph)


def split_support_query(labels: torch.Tensor) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """``(support_ids, query_ids)``: the query is every sample of one random class of the batch;
    None when the batch holds a single class."""
    classes = torch.unique(labels)
    if len(classes) < 2:
        return None
    query_class = classes[torch.randint(len(classes), (1,)).item()]
    return torch.where(labels != query_class)[0], torch.where(labels == query_class)[0]


@config_section
def prometar_config(cfg: CN) -> None:
    """ProMetaR's keys (``TRAINER.PROMETAR`` and the regulator's optimizer ``OPTIM_VNET``)."""
    cfg.TRAINER.PROMETAR = clip_trainer_keys(
        N_CTX_VISION=4, N_CTX_TEXT=4, CTX_INIT="a photo of a", PROMPT_DEPTH_VISION=9, PROMPT_DEPTH_TEXT=9,
        # regularizer weights: the values ProMetaR's code applies (it hard-codes 50 and 20)
        TEXT_LOSS_WEIGHT=50.0, IMAGE_LOSS_WEIGHT=20.0,
        ADAPT_LR=0.0005,  # inner (MAML) step size
        LR_RATIO=0.0005,  # scale of the query (outer) loss
        FAST_ADAPTATION=False,  # first-order inner step
        MIXUP_ALPHA=0.5, MIXUP_BETA=0.5,
        DIM_RATE=8,  # hidden size of the regulator = dim // DIM_RATE
        # "reference": as ProMetaR's code, the v-net's scheduler is built but never stepped, so the v-net
        # trains at its warm-up LR (OPTIM_VNET.WARMUP_CONS_LR) for all epochs; "stepped": it follows
        # OPTIM_VNET's schedule (e.g. a cosine from OPTIM_VNET.LR), stepped with the prompts'
        VNET_LR_SCHEDULE="reference",
    )

    # second optimizer, for the regulator ("v-net"), with Dassl's OPTIM keys
    cfg.OPTIM_VNET = cfg.OPTIM.clone()


@TRAINER_REGISTRY.register()
class ProMetaR(PromptTrainer):
    """IVLP prompts trained with a meta-learned regularizer gate and augmented virtual tasks."""

    method_key = "PROMETAR"

    def check_cfg(self, cfg) -> None:
        super().check_cfg(cfg)
        prometar = cfg.TRAINER.PROMETAR
        if prometar.VNET_LR_SCHEDULE not in VNET_LR_SCHEDULES:
            raise ValueError(f"TRAINER.PROMETAR.VNET_LR_SCHEDULE must be one of {', '.join(VNET_LR_SCHEDULES)}, "
                             f"got {prometar.VNET_LR_SCHEDULE!r}")
        require_prompts(cfg.TRAINER.PROMETAR, "PROMETAR", "ProMetaR's independent V-L prompting", "N_CTX_TEXT",
                        "PROMPT_DEPTH_TEXT")

    def build_custom_clip(self, clip_model: CLIP, classnames: list) -> RegularizedCLIP:
        cfg = self.method_cfg
        templates = ensemble_templates(self.cfg.DATASET.NAME)
        print(f"Zero-shot text features (regularizer target) from {len(templates)} templates")
        zero_shot_text = zero_shot_text_features(clip_model.to(self.device), classnames, templates, cfg.TEXT_CHUNK)
        prompts = IndependentPrompts(clip_model, classnames, cfg.N_CTX_TEXT, cfg.CTX_INIT, cfg.PROMPT_DEPTH_TEXT,
                                     cfg.N_CTX_VISION, cfg.PROMPT_DEPTH_VISION)
        print(f'Independent V-L design; initial text context: "{prompts.prompt_prefix}"; '
              f"{cfg.N_CTX_TEXT} text / {cfg.N_CTX_VISION} vision tokens, "
              f"depth {cfg.PROMPT_DEPTH_TEXT} / {cfg.PROMPT_DEPTH_VISION}")
        return RegularizedCLIP(clip_model, prompts, zero_shot_text, cfg.TEXT_CHUNK)

    def build_model(self) -> None:
        super().build_model()
        self.regulator = MetaRegularizer(self.prompt_parameters(), self.method_cfg.DIM_RATE)
        self.regulator.type(self.model.dtype).to(self.device)
        self.optim_vnet = build_optimizer(self.regulator, self.cfg.OPTIM_VNET)
        self.sched_vnet = build_lr_scheduler(self.optim_vnet, self.cfg.OPTIM_VNET)
        stepped = self.method_cfg.VNET_LR_SCHEDULE == "stepped"
        self.register_model("regulator", self.regulator, self.optim_vnet, self.sched_vnet if stepped else None)
        self.mixed_logits_call = _MixedLogits(self.model)

    def regularized_losses(self, images: torch.Tensor, labels: torch.Tensor):
        cfg = self.method_cfg
        with autocast_context(self.precision, self.device):
            return self.model.regularized_losses(images, labels, cfg.TEXT_LOSS_WEIGHT, cfg.IMAGE_LOSS_WEIGHT)

    def adapted_prompts(self, images: torch.Tensor, labels: torch.Tensor) -> TensorDict:
        """Inner step on a support set: ``theta - ADAPT_LR * (g_ce + gamma * g_R)``, differentiable in
        the regulator (and, unless ``FAST_ADAPTATION``, in ``theta`` through the gradients)."""
        cfg = self.method_cfg
        params = self.prompt_parameters()
        second_order = not cfg.FAST_ADAPTATION
        with twice_differentiable(second_order):
            task_loss, regularizer, _ = self.regularized_losses(images, labels)
        task_grads, reg_grads = loss_gradients(params, task_loss, regularizer, create_graph=second_order)
        step = self.regulator(task_grads, reg_grads)
        return {name: param - cfg.ADAPT_LR * step[name] for name, param in params.items()}

    def regulated_step(self, images: torch.Tensor, labels: torch.Tensor) -> Dict[str, float]:
        """Step 1: one optimizer step of the prompts along the regulated gradient of the whole batch."""
        params = self.prompt_parameters()
        task_loss, regularizer, logits = self.regularized_losses(images, labels)
        task_grads, reg_grads = loss_gradients(params, task_loss, regularizer, create_graph=False)
        with torch.no_grad():
            regulated = self.regulator(task_grads, reg_grads)
        self.optim.zero_grad()
        for name, param in params.items():
            param.grad = regulated[name].type(param.dtype)
        self.optim.step()
        return {"loss": (task_loss + regularizer).item(), "loss_ce": task_loss.item(),
                "loss_reg": regularizer.item(), "acc": compute_accuracy(logits, labels)[0].item()}

    def query_loss(self, images: torch.Tensor, labels: torch.Tensor, support_ids: torch.Tensor,
                   query_ids: torch.Tensor, partners: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """Steps 2-3: adapt on the support set, then the mixup loss of the query set under the
        adapted prompts (query image ``i`` mixed with image ``partners[i]`` by ``lam[i]``)."""
        adapted = self.adapted_prompts(images[support_ids], labels[support_ids])
        with autocast_context(self.precision, self.device):
            logits = functional_call(self.mixed_logits_call, {f"model.{name}": t for name, t in adapted.items()},
                                     (images[query_ids], images[partners], lam))
            per_sample = (lam * F.cross_entropy(logits, labels[query_ids], reduction="none")
                          + (1 - lam) * F.cross_entropy(logits, labels[partners], reduction="none"))
        return per_sample.mean() * self.method_cfg.LR_RATIO

    def meta_step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Steps 2-4 on a virtual task drawn from the batch; returns the query loss (0 when skipped)."""
        split = split_support_query(labels)
        if split is None:
            return 0.0
        cfg = self.method_cfg
        support_ids, query_ids = split
        lam = torch.distributions.Beta(cfg.MIXUP_ALPHA, cfg.MIXUP_BETA).sample((len(query_ids),)).to(self.device)
        partners = support_ids[torch.randint(len(support_ids), (len(query_ids),), device=self.device)]
        loss = self.query_loss(images, labels, support_ids, query_ids, partners, lam)
        self.model_zero_grad()
        self.detect_anomaly(loss)
        loss.backward()
        self.optim.step()
        self.optim_vnet.step()
        return loss.item()

    def forward_backward(self, batch) -> Dict[str, float]:
        images, labels = self.parse_batch_train(batch)
        # the whole step on one attention kernel: chunked text encoding recomputes its forward
        # during the backward passes, and must meet the kernel the forward used
        with twice_differentiable(not self.method_cfg.FAST_ADAPTATION):
            summary = self.regulated_step(images, labels)
            summary["loss_query"] = self.meta_step(images, labels)
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return summary
