"""Zero-shot CLIP (Radford et al., 2021) as a Dassl trainer, the way CoOp evaluates it.

Class text features come from a hand-crafted template per dataset (CoOp's ``CUSTOM_TEMPLATES``)
or, with ``TRAINER.ZSCLIP.ENSEMBLE``, from the mean of the normalised features of CoOp's
ensemble templates (its ZeroshotCLIP2). Logits are ``exp(logit_scale) * cos(image, text)``.
There is nothing to train: run it with ``--eval-only``.
"""
import torch
from dassl.engine import TRAINER_REGISTRY, TrainerX
from yacs.config import CfgNode as CN

from trainers.backbone.precision import check_precision
from trainers.backbone.prompt_trainer import load_clip_for_training
from trainers.backbone.templates import dataset_template, ensemble_templates, fill_template
from trainers.backbone.text_encoder import encode_texts
from trainers.config import clip_trainer_keys, config_section


@config_section
def zsclip_config(cfg: CN) -> None:
    """Zero-shot CLIP's keys (``TRAINER.ZSCLIP``)."""
    cfg.TRAINER.ZSCLIP = clip_trainer_keys(ENSEMBLE=False)  # ENSEMBLE: average the prompt-ensemble templates


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(TrainerX):
    """CLIP with fixed prompts: a template per dataset, or the prompt ensemble."""

    def check_cfg(self, cfg) -> None:
        check_precision(cfg.TRAINER.ZSCLIP.PREC)

    def build_model(self) -> None:
        cfg = self.cfg
        clip_model, self.precision = load_clip_for_training(cfg, cfg.TRAINER.ZSCLIP.PREC, self.device,
                                                             "TRAINER.ZSCLIP.PREC")
        self.clip_model = clip_model.to(self.device)
        self.text_features = self.class_text_features(self.dm.dataset.classnames)

    def class_text_features(self, classnames: list) -> torch.Tensor:
        """Normalised class text features from the dataset template(s)."""
        cfg = self.cfg
        if cfg.TRAINER.ZSCLIP.ENSEMBLE:
            templates = ensemble_templates(cfg.DATASET.NAME)
        else:
            templates = [dataset_template(cfg.DATASET.NAME)]
        chunk = cfg.TRAINER.ZSCLIP.TEXT_CHUNK
        per_template = [encode_texts(self.clip_model, fill_template(t, classnames), chunk) for t in templates]
        for template, features in zip(templates, per_template):
            print(f'Prompt template: "{template}" ({len(features)} classes)')
        features = torch.stack(per_template).mean(dim=0)
        return features / features.norm(dim=-1, keepdim=True)

    def train(self) -> None:
        """Nothing to learn: evaluate instead (as ``--eval-only`` does)."""
        print("ZeroshotCLIP has no parameters to train; evaluating")
        self.test()

    @torch.no_grad()
    def model_inference(self, images: torch.Tensor) -> torch.Tensor:
        image_features = self.clip_model.encode_image(images)
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        return self.clip_model.logit_scale.exp() * image_features @ self.text_features.t()
