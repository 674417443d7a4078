"""GRAM meta-training as a Dassl trainer: stage 2 of the pipeline (cluster -> meta-train -> tune).

Reads the clustering stage's split file and its encoded corpus, builds the chosen prompt method's
model (``TRAINER.GRAM.METHOD``, any registered prompt trainer) with captions in place of class
names, and meta-learns its prompt initialization and the regulator psi_phi (``meta_learning``).
It logs, checkpoints and resumes like any Dassl trainer (``<output>/meta/model.pth.tar-<epoch>``,
tensorboard, ``log.txt``) and ends by writing ``<output>/meta_checkpoint.pth`` for the GRAM
trainers.

Images: methods that leave the image tower frozen (CoOp, CoCoOp: ``image_tower_frozen``) read
the image features the clustering stage already computed, so meta-training never runs the image
encoder. Methods that prompt the image tower (VPT, MaPLe) need pixels: the corpus
(``TRAINER.GRAM.CORPUS``) is read once and its preprocessed images are kept in memory
(meta-train such methods on a corpus subsample that fits).
Meta-training runs in fp32 whatever the method's ``PREC`` (second-order steps in fp16 overflow).

Validation (the criterion for choosing meta-learning settings, ``bench/bench_toy_meta_select.py``): after
every epoch, ``VAL_TASKS`` fixed tasks are adapted and their query loss and accuracy (image -> caption
top-1 within the query batch) are recorded. With ``HOLDOUT_CLUSTERS`` = m > 0, m clusters of the task
level are drawn at random (seeded) and kept out of meta-training; validation tasks take their support and
query sets from those clusters only, so the criterion is out of sample in the domains. With
``VAL_INNER_STEPS`` / ``VAL_INNER_LR`` set, validation adapts with that fixed number of regulated
steps whatever the inner loop being tried, as downstream tuning uses its own recipe whatever
the meta settings: candidates with other inner loops are then compared under the same adaptation.
The history is written to ``<output>/validation.json``; the first entry (before meta-training: a random
init with a fresh, identity-like regulator) is the plain prompt-tuning reference.
"""
from __future__ import annotations

import json
import os
import time
from typing import Dict, List

import numpy as np
import torch
from dassl.engine import TRAINER_REGISTRY
from dassl.engine.trainer import TrainerBase
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import AverageMeter
from torch import nn

from trainers.backbone.clip_loader import checkpoint_fingerprint, load_clip
from trainers.backbone.transforms import clip_preprocess

from tools.atomic import write_text_atomically

from .clustering import TaskSampler, load_encoded, load_split
from .clustering.task_sampler import held_out_clusters
from .meta_checkpoint import MetaCheckpoint, save_meta_checkpoint
from .meta_learning import MetaLearner, MetaLearningSettings, MetaTask, inner_adapt
from .mixin import trainable_prompt_parameters
from .regulator import build_regulator
from .structure_tta import (StructureInducedRegulator, entropy_step_objective, structure_encoder_from_split,
                            test_time_payload)
from .task_loss import PairBatch, contrastive_pair_loss, make_pair_logits, make_pair_loss, mix_query_with_support

META_CHECKPOINT_NAME = "meta_checkpoint.pth"
VALIDATION_NAME = "validation.json"
PLACEHOLDER_CLASSNAMES = ["object"]


class PromptModelFactory:
    """Builds a registered prompt trainer's model without its data pipeline."""

    def __init__(self, cfg, method: str):
        self.trainer_class = TRAINER_REGISTRY.get(method)
        self.cfg = cfg
        self.precision = "fp32"

    @property
    def method_cfg(self):
        return self.cfg.TRAINER[self.trainer_class.method_key]

    def build(self, clip_model) -> nn.Module:
        model = self.trainer_class.build_custom_clip(self, clip_model, PLACEHOLDER_CLASSNAMES)
        prompt_module = self.trainer_class.prompt_module_name
        for name, param in model.named_parameters():
            param.requires_grad_(prompt_module in name)
        return model

    @property
    def image_tower_frozen(self) -> bool:
        return bool(getattr(self.trainer_class, "image_tower_frozen", False))


class MetaState(nn.Module):
    """What meta-training learns and checkpoints: the prompt tensors (shared with the model),
    the regulator, and the task sampler's position (so a resumed run draws the same tasks)."""

    def __init__(self, prompt_params: Dict[str, nn.Parameter], regulator: nn.Module):
        super().__init__()
        self.prompts = nn.ParameterDict({name.replace(".", "__"): p for name, p in prompt_params.items()})
        self.regulator = regulator
        self.register_buffer("sampler_step", torch.zeros((), dtype=torch.long))


class PixelStore:
    """Preprocessed corpus images by row of the split (for methods that prompt the image tower)."""

    def __init__(self, corpus_path: str, ids: List[str], resolution: int):
        from datasets.corpus import ImageTextCorpus

        if not corpus_path:
            raise ValueError("this prompt method prompts the image tower: set TRAINER.GRAM.CORPUS to the corpus "
                             "manifest the split was made from")
        row_of = {corpus_id: row for row, corpus_id in enumerate(ids)}
        transform = clip_preprocess(resolution)
        images: List[torch.Tensor] = [None] * len(ids)
        for item in ImageTextCorpus(corpus_path):
            row = row_of.get(item.id)
            if row is not None:
                images[row] = transform(item.image)
        missing = [ids[row] for row, image in enumerate(images) if image is None]
        if missing:
            raise ValueError(f"{corpus_path} lacks {len(missing)} image(s) of the split, e.g. id {missing[0]!r}")
        self.images = torch.stack(images)

    def __getitem__(self, rows: np.ndarray) -> torch.Tensor:
        return self.images[torch.as_tensor(rows)]


class MetaTrainer(TrainerBase):
    """Meta-learns a prompt initialization and a gradient regulator from cross-cluster tasks."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.gram = cfg.TRAINER.GRAM
        self.output_dir = cfg.OUTPUT_DIR
        self.device = torch.device("cuda" if torch.cuda.is_available() and cfg.USE_CUDA else "cpu")
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.start_epoch = self.epoch = 0

        self.clip_fingerprint = checkpoint_fingerprint(cfg.MODEL.BACKBONE.NAME)
        split_path = self.gram.SPLIT_FILE
        if not split_path:
            raise ValueError("no split file: pass --split-file (the split.json written by cluster.py)")
        self.split = load_split(split_path, expected_clip_fingerprint=self.clip_fingerprint)
        cache_dir = self.gram.FEATURE_CACHE or self.split.settings.get("feature_cache") \
            or os.path.join(os.path.dirname(os.path.abspath(split_path)), "features")
        self.encoded = load_encoded(cache_dir, expected_clip_fingerprint=self.clip_fingerprint)
        self.split.check_corpus_ids(self.encoded.ids, source=f"feature cache {cache_dir}")

        clip_model = load_clip(cfg.MODEL.BACKBONE.NAME).float()
        factory = PromptModelFactory(cfg, self.gram.METHOD)
        self.model = factory.build(clip_model).to(self.device)
        self.images = (torch.from_numpy(self.encoded.image) if factory.image_tower_frozen
                       else PixelStore(self.gram.CORPUS, self.encoded.ids, clip_model.visual.input_resolution))

        self.prompt_params = trainable_prompt_parameters(self.model)
        shapes = {name: tuple(p.shape) for name, p in self.prompt_params.items()}
        self.regulator = build_regulator(self.gram.REGULATOR, shapes, rank=self.gram.RANK,
                                         gate_hidden=self.gram.GATE_HIDDEN).to(self.device)
        self.state = MetaState(self.prompt_params, self.regulator)
        self.optim = build_optimizer(self.state, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_model("meta", self.state, self.optim, self.sched)

        self.settings = MetaLearningSettings(
            inner_lr=self.gram.INNER_LR, inner_steps=self.gram.INNER_STEPS, first_order=self.gram.FIRST_ORDER,
            consistency_weight=self.gram.CONSISTENCY_WEIGHT, gradient_similarity=self.gram.GRADIENT_SIMILARITY)
        self.learner = MetaLearner(self.prompt_params, self.regulator, make_pair_loss(self.model), self.settings)
        self.val_settings = MetaLearningSettings(
            inner_lr=self.gram.VAL_INNER_LR or self.gram.INNER_LR,
            inner_steps=self.gram.VAL_INNER_STEPS or self.gram.INNER_STEPS,
            first_order=True, consistency_weight=0.0)  # the adapted prompts are the same in either order
        self.held_out, training_clusters = None, None
        if self.gram.HOLDOUT_CLUSTERS:
            level = self.split.levels[self.gram.LEVEL]
            self.held_out = held_out_clusters(self.split, self.gram.LEVEL, self.gram.HOLDOUT_CLUSTERS,
                                              max(self.gram.SUPPORT_SIZE, self.gram.QUERY_SIZE), max(cfg.SEED, 0))
            training_clusters = np.setdiff1d(np.arange(level.num_clusters), self.held_out)
        self.sampler = self._sampler(seed=max(cfg.SEED, 0), clusters=training_clusters)
        self.logits_fn = make_pair_logits(self.model)
        self.val_tasks = self._sampler(seed=max(cfg.SEED, 0) + 10_000, clusters=self.held_out).sample_tasks(
            self.gram.VAL_TASKS)
        self.validation_history: List[Dict[str, float]] = []

    def _sampler(self, seed: int, clusters=None) -> TaskSampler:
        return TaskSampler(self.split, level=self.gram.LEVEL, support_size=self.gram.SUPPORT_SIZE,
                           query_size=self.gram.QUERY_SIZE, seed=seed, adaptive=self.gram.ADAPTIVE_TASKS,
                           clusters=clusters)

    # ------------------------------------------------------------------ tasks
    def pair_batch(self, rows: np.ndarray) -> PairBatch:
        images = self.images[rows].to(self.device)
        return PairBatch(images, [self.encoded.captions[r] for r in rows], ids=[int(r) for r in rows])

    def meta_task(self, task, mix_seed=None) -> MetaTask:
        support, query = self.pair_batch(task.support_ids), self.pair_batch(task.query_ids)
        if mix_seed is not None and self.gram.MIXUP_ALPHA > 0:
            query = mix_query_with_support(query, support, self.gram.MIXUP_ALPHA, np.random.default_rng(mix_seed))
        return MetaTask(support, query, task.similarity)

    # ------------------------------------------------------------------ Dassl lifecycle
    def train(self) -> None:
        super().train(self.start_epoch, self.max_epoch)

    def before_train(self) -> None:
        self.init_writer(os.path.join(self.output_dir, "tensorboard"))
        self.start_epoch = self.resume_model_if_exist(self.output_dir)
        self.sampler.step = int(self.state.sampler_step)
        self.time_start = time.time()
        print(f"Meta-training {self.gram.METHOD} prompts ({', '.join(self.prompt_params)}) with a "
              f"{self.gram.REGULATOR} regulator on {self.split.num_pairs} pairs, "
              f"{self.split.levels[self.sampler.level].num_clusters} clusters")
        print(f"Before meta-training: {self.format_validation(self.validate())}")

    def run_epoch(self) -> None:
        self.state.train()
        meters: Dict[str, AverageMeter] = {}
        iters = self.gram.ITERS_PER_EPOCH
        for self.batch_idx in range(iters):
            step = self.sampler.step
            tasks = [self.meta_task(t, mix_seed=(self.cfg.SEED, step, i))
                     for i, t in enumerate(self.sampler.sample_tasks(self.gram.META_BATCH))]
            self.state.sampler_step.fill_(self.sampler.step)
            stats = self.learner.step(tasks, self.optim)
            for key, value in stats.items():
                meters.setdefault(key, AverageMeter()).update(value)
            global_step = self.epoch * iters + self.batch_idx
            for key, value in stats.items():
                self.write_scalar(f"meta/{key}", value, global_step)
            if (self.batch_idx + 1) % self.cfg.TRAIN.PRINT_FREQ == 0 or self.batch_idx + 1 == iters:
                summary = " ".join(f"{k} {m.val:.4f} ({m.avg:.4f})" for k, m in meters.items())
                print(f"epoch [{self.epoch + 1}/{self.max_epoch}] batch [{self.batch_idx + 1}/{iters}] "
                      f"{summary} lr {self.optim.param_groups[0]['lr']:.4e}")
        self.update_lr()

    def after_epoch(self) -> None:
        validation = self.validate()
        for key, value in validation.items():
            self.write_scalar(f"meta_val/{key}", value, self.epoch + 1)
        print(f"epoch [{self.epoch + 1}/{self.max_epoch}] validation: {self.format_validation(validation)}")
        self.save_model(self.epoch, self.output_dir)

    def after_train(self) -> None:
        test_time = self.train_test_time_regulator() if self.gram.TTA else None
        path = self.write_meta_checkpoint(test_time)
        self.write_validation()
        elapsed = time.time() - self.time_start
        print(f"Meta checkpoint written to {path} ({elapsed:.1f} s)")
        self.close_writer()

    # ------------------------------------------------------------------ evaluation and output
    def validate(self) -> Dict[str, float]:
        """Query loss of the fixed validation tasks before and after adaptation, and accuracy after it."""
        before, after, accuracy = [], [], []
        for task in self.val_tasks:
            meta_task = self.meta_task(task)
            with torch.no_grad():
                before.append(float(self.learner.loss_fn(self.prompt_params, meta_task.query)))
            adapted, _, _, _ = inner_adapt(self.prompt_params, self.learner.loss_fn, meta_task.support,
                                           self.regulator, self.val_settings)
            with torch.no_grad():
                logits = self.logits_fn(adapted, meta_task.query.images, meta_task.query.texts)
                after.append(float(contrastive_pair_loss(logits)))
                targets = torch.arange(logits.shape[0], device=logits.device)
                accuracy.append(100.0 * float((logits.argmax(dim=-1) == targets).float().mean()))
        result = {"query_loss_before_adaptation": float(np.mean(before)),
                  "query_loss_after_adaptation": float(np.mean(after)),
                  "query_accuracy_after_adaptation": float(np.mean(accuracy))}
        self.validation_history.append(result)
        return result

    def write_validation(self) -> str:
        """``validation.json``: the held-out clusters, the validation adaptation and the history."""
        record = {"held_out_clusters": None if self.held_out is None else self.held_out.tolist(),
                  "val_inner_steps": self.val_settings.inner_steps, "val_inner_lr": self.val_settings.inner_lr,
                  "history": self.validation_history}
        path = os.path.join(self.output_dir, VALIDATION_NAME)
        write_text_atomically(path, json.dumps(record, indent=2))
        return path

    @staticmethod
    def format_validation(validation: Dict[str, float]) -> str:
        return ", ".join(f"{k} {v:.4f}" for k, v in validation.items())

    def train_test_time_regulator(self) -> dict:
        """Stage 2b (``TRAINER.GRAM.TTA``): the structure-induced regulator for test-time tuning,
        trained with the meta-learned prompts frozen (see ``structure_tta``)."""
        gram = self.gram
        encoder = structure_encoder_from_split(self.split, gram.TTA_TEMPERATURE).to(self.device)
        shapes = {name: tuple(p.shape) for name, p in self.prompt_params.items()}
        regulator = StructureInducedRegulator(shapes, encoder.num_features, gram.RANK, gram.GATE_HIDDEN).to(self.device)
        optimizer = torch.optim.Adam(regulator.parameters(), lr=self.cfg.OPTIM.LR)
        logits_fn = make_pair_logits(self.model)
        sampler = self._sampler(seed=max(self.cfg.SEED, 0) + 20_000)
        meter = AverageMeter()
        for step in range(gram.TTA_ITERS):
            losses = []
            for task in sampler.sample_tasks(gram.META_BATCH):
                rows = task.query_ids[:gram.TTA_IMAGES]
                batch = self.pair_batch(task.query_ids)
                structure = encoder(torch.from_numpy(self.encoded.image[rows]).to(self.device))
                for index in range(len(rows)):
                    losses.append(entropy_step_objective(
                        self.prompt_params, logits_fn, batch.images[index:index + 1], batch.texts, index,
                        regulator, structure[index], gram.TTA_INNER_LR))
            loss = torch.stack(losses).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            meter.update(float(loss.detach()))
            self.write_scalar("meta_tta/supervised_loss_after_step", meter.val, step)
            if (step + 1) % self.cfg.TRAIN.PRINT_FREQ == 0 or step + 1 == gram.TTA_ITERS:
                print(f"test-time regulator [{step + 1}/{gram.TTA_ITERS}] loss {meter.val:.4f} ({meter.avg:.4f})")
        regulator.requires_grad_(False)
        return test_time_payload(regulator.cpu(), encoder.cpu())

    def write_meta_checkpoint(self, test_time: dict = None) -> str:
        checkpoint = MetaCheckpoint(
            method=self.gram.METHOD,
            prompt_init={name: p.detach() for name, p in self.prompt_params.items()},
            regulator_config=self.regulator.config(),
            regulator_state=self.regulator.state_dict(),
            clip_fingerprint=self.clip_fingerprint,
            backbone=self.cfg.MODEL.BACKBONE.NAME,
            settings={"split_file": os.path.abspath(self.gram.SPLIT_FILE), "config": self.cfg.dump()},
            test_time=test_time,
        )
        path = os.path.join(self.output_dir, META_CHECKPOINT_NAME)
        save_meta_checkpoint(checkpoint, path)
        return path
