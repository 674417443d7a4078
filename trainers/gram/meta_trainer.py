"""GRAM meta-training as a Dassl trainer: stage 2 of the pipeline (cluster -> meta-train -> tune).

Reads the clustering stage's split file and its encoded corpus, builds the chosen prompt method's
model (``TRAINER.GRAM.METHOD``, any registered prompt trainer) with captions in place of class
names, and meta-learns its prompt initialization and the regulator psi_phi (``meta_learning``).
It logs, checkpoints and resumes like any Dassl trainer (``<output>/meta/model.pth.tar-<epoch>``,
tensorboard, ``log.txt``) and ends by writing ``<output>/meta_checkpoint.pth`` for the GRAM
trainers.

Images: methods that leave the image tower frozen (CoOp, CoCoOp: ``image_tower_frozen``) read
the image features the clustering stage already computed, so meta-training never runs the image
encoder. Methods that prompt the image tower (VPT, MaPLe) need pixels: they are streamed from the corpus
(``TRAINER.GRAM.CORPUS``) by random access, decoded ahead by ``TRAINER.GRAM.PIXEL_WORKERS`` DataLoader
workers (``pixel_stream``), so memory does not grow with the corpus.
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

Distributed (``torchrun --nproc-per-node N meta_train.py ...``): every rank draws the same meta-batch
(same seed), computes the meta-gradient of its share (tasks ``i`` with ``i % N == rank``, each loss
over the whole meta-batch size), the gradients and stats are summed with one all-reduce, and every
rank takes the same optimizer step. Rank 0 alone writes checkpoints (atomically), tensorboard and the
meta checkpoint; all ranks resume from the same checkpoint. Ranks given another split file, CLIP or
config are refused before any work.
"""
from __future__ import annotations

import copy
import json
import os
import time
from typing import Dict, Iterator, List, Optional

import numpy as np
import torch
from dassl.engine import TRAINER_REGISTRY
from dassl.engine.trainer import TrainerBase
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import AverageMeter
from torch import nn

from clustering.encode import corpus_source_key, load_encoded
from clustering.features import refuse_nonfinite_rows
from clustering.split_file import load_split
from clustering.task_sampler import TaskSampler, held_out_clusters
from fileio.stage_files import META_CHECKPOINT_NAME
from parallel import distributed
from trainers.backbone.clip_loader import checkpoint_fingerprint, load_clip
from trainers.backbone.prompt_trainer import trainable_prompt_parameters

from fileio.atomic import write_text_atomically

from .meta_checkpoint import MetaCheckpoint, save_meta_checkpoint
from .meta_learning import MetaLearner, MetaLearningSettings, MetaTask, inner_adapt
from .pixel_stream import CorpusPixels, PixelStream, RowPixels
from .regulator import build_regulator
from .structure_tta import (StructureInducedRegulator, entropy_step_objective, structure_encoder_from_split,
                            test_time_payload)
from .task_loss import PairBatch, contrastive_pair_loss, make_pair_logits, make_pair_loss, mix_query_with_support

VALIDATION_NAME = "validation.json"
PLACEHOLDER_CLASSNAMES = ["object"]


def build_method_model(cfg, method: str, clip_model, device) -> nn.Module:
    """The registered prompt trainer ``method``'s model (the trainer's own class-level builder), with
    captions in place of class names and its prompts as its only trainable parameters (fp32)."""
    return TRAINER_REGISTRY.get(method).build_prompt_model(cfg, clip_model, PLACEHOLDER_CLASSNAMES, device, "fp32")


class MetaState(nn.Module):
    """What meta-training learns and checkpoints: the prompt tensors (shared with the model),
    the regulator, and the task sampler's position (so a resumed run draws the same tasks)."""

    def __init__(self, prompt_params: Dict[str, nn.Parameter], regulator: nn.Module):
        super().__init__()
        self.prompts = nn.ParameterDict({name.replace(".", "__"): p for name, p in prompt_params.items()})
        self.regulator = regulator
        self.register_buffer("sampler_step", torch.zeros((), dtype=torch.long))


class MetaTrainer(TrainerBase):
    """Meta-learns a prompt initialization and a gradient regulator from cross-cluster tasks."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.gram = cfg.TRAINER.GRAM
        self.output_dir = cfg.OUTPUT_DIR
        self.device = torch.device(distributed.device_for_rank(
            "cuda" if torch.cuda.is_available() and cfg.USE_CUDA else "cpu"))
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.start_epoch = self.epoch = 0

        self.clip_fingerprint = checkpoint_fingerprint(cfg.MODEL.BACKBONE.NAME)
        split_path = self.gram.SPLIT_FILE
        if not split_path:
            raise ValueError("no split file: pass --split-file (the split.json written by cluster.py)")
        self._check_ranks(split_path)
        self.split = load_split(split_path, expected_clip_fingerprint=self.clip_fingerprint)
        cache_dir = self.gram.FEATURE_CACHE or self.split.settings.get("feature_cache") \
            or os.path.join(os.path.dirname(os.path.abspath(split_path)), "features")
        image_tower_frozen = getattr(TRAINER_REGISTRY.get(self.gram.METHOD), "image_tower_frozen", False)
        image_features = image_tower_frozen or self.gram.TTA  # else only ids and captions are needed
        self.encoded = load_encoded(cache_dir, expected_clip_fingerprint=self.clip_fingerprint,
                                    modalities=("image",) if image_features else ())
        self.split.check_corpus_ids(self.encoded.ids, source=f"feature cache {cache_dir}")
        refuse_nonfinite_rows(self.encoded.image, self.encoded.text, self.encoded.ids, f"feature cache {cache_dir}")

        clip_model = load_clip(cfg.MODEL.BACKBONE.NAME).float()
        if not image_tower_frozen and self.gram.CORPUS:
            from datasets.corpus import corpus_fingerprint

            self.split.check_corpus_source(self.gram.CORPUS, corpus_fingerprint(self.gram.CORPUS), split_path)
        self.model = build_method_model(cfg, self.gram.METHOD, clip_model, self.device).to(self.device)
        self.features = torch.from_numpy(self.encoded.image) if image_tower_frozen else None
        self.pixels = None if image_tower_frozen else self._pixel_stream(clip_model.visual.input_resolution)

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
        self.seed = max(cfg.SEED, 0)  # SEED -1 (no fixed seed, train.py's default) draws as seed 0 does
        self.val_settings = MetaLearningSettings(
            inner_lr=self.gram.VAL_INNER_LR or self.gram.INNER_LR,
            inner_steps=self.gram.VAL_INNER_STEPS or self.gram.INNER_STEPS,
            first_order=True, consistency_weight=0.0)  # the adapted prompts are the same in either order
        self.held_out, training_clusters = None, None
        if self.gram.HOLDOUT_CLUSTERS:
            level = self.split.levels[self.gram.LEVEL]
            self.held_out = held_out_clusters(self.split, self.gram.LEVEL, self.gram.HOLDOUT_CLUSTERS,
                                              max(self.gram.SUPPORT_SIZE, self.gram.QUERY_SIZE), self.seed)
            training_clusters = np.setdiff1d(np.arange(level.num_clusters), self.held_out)
        self.sampler = self._sampler(seed=self.seed, clusters=training_clusters)
        self.logits_fn = make_pair_logits(self.model)
        self.val_tasks = self._sampler(seed=self.seed + 10_000, clusters=self.held_out).sample_tasks(
            self.gram.VAL_TASKS)
        self.validation_history: List[Dict[str, float]] = []

    def _check_ranks(self, split_path: str) -> None:
        """Under torchrun: every rank must read the same split file, CLIP and config (refused otherwise),
        and each rank needs at least one task of the meta-batch."""
        if not distributed.is_distributed():
            return
        split_key = corpus_source_key(split_path) if os.path.isfile(split_path) else split_path
        distributed.require_agreement({"split file": split_key, "CLIP checkpoint": self.clip_fingerprint,
                                       "config": self.cfg.dump()}, "meta_train.py")
        if self.gram.META_BATCH < distributed.world_size():
            raise ValueError(f"TRAINER.GRAM.META_BATCH {self.gram.META_BATCH} is smaller than the "
                             f"{distributed.world_size()} ranks: each rank takes a share of the meta-batch")

    def _pixel_stream(self, resolution: int) -> PixelStream:
        if not self.gram.CORPUS:
            raise ValueError("this prompt method prompts the image tower: set TRAINER.GRAM.CORPUS to the corpus "
                             "manifest the split was made from")
        dataset = CorpusPixels(self.gram.CORPUS, self.encoded.ids, resolution)
        if dataset.locator.unlocated:
            print(f"{self.gram.CORPUS} lacks {dataset.locator.unlocated} image(s) of the split; their rows are left "
                  f"out of the tasks that draw them")
        return PixelStream(dataset, workers=self.gram.PIXEL_WORKERS, prefetch=self.gram.PIXEL_PREFETCH,
                           pin_memory=self.device.type == "cuda")

    def _sampler(self, seed: int, clusters=None) -> TaskSampler:
        return TaskSampler(self.split, level=self.gram.LEVEL, support_size=self.gram.SUPPORT_SIZE,
                           query_size=self.gram.QUERY_SIZE, seed=seed, adaptive=self.gram.ADAPTIVE_TASKS,
                           clusters=clusters)

    # ------------------------------------------------------------------ tasks
    def pair_batch(self, rows: np.ndarray, pixels: Optional[RowPixels] = None) -> PairBatch:
        """The pairs of ``rows``: cached image features, or pixels (streamed ahead, or read now); rows whose
        image cannot be read are left out."""
        if self.pixels is None:
            images, kept = self.features[rows], rows
        else:
            pixels = pixels if pixels is not None else self.pixels.fetch(rows)
            if not np.array_equal(pixels.requested, rows):
                raise RuntimeError("the pixel stream is out of step with the task sampler")
            images, kept = pixels.images, pixels.rows
        return PairBatch(images.to(self.device, non_blocking=True), [self.encoded.captions[r] for r in kept],
                         ids=[int(r) for r in kept])

    def meta_task(self, task, mix_seed=None, pixels: Optional[Iterator[RowPixels]] = None) -> MetaTask:
        """The task's support and query batches (pixels: the next two batches of an epoch's stream)."""
        support = self.pair_batch(task.support_ids, next(pixels) if pixels is not None else None)
        query = self.pair_batch(task.query_ids, next(pixels) if pixels is not None else None)
        if mix_seed is not None and self.gram.MIXUP_ALPHA > 0:
            query = mix_query_with_support(query, support, self.gram.MIXUP_ALPHA, np.random.default_rng(mix_seed))
        return MetaTask(support, query, task.similarity)

    # ------------------------------------------------------------------ Dassl lifecycle
    def train(self) -> None:
        super().train(self.start_epoch, self.max_epoch)

    def before_train(self) -> None:
        if distributed.is_main():
            self.init_writer(os.path.join(self.output_dir, "tensorboard"))
        self.start_epoch = self.resume_model_if_exist(self.output_dir)
        self.sampler.step = int(self.state.sampler_step)
        self.time_start = time.time()
        print(f"Meta-training {self.gram.METHOD} prompts ({', '.join(self.prompt_params)}) with a "
              f"{self.gram.REGULATOR} regulator on {self.split.num_pairs} pairs, "
              f"{self.split.levels[self.sampler.level].num_clusters} clusters"
              + (f", meta-batch split over {distributed.world_size()} ranks" if distributed.is_distributed() else ""))
        print(f"Before meta-training: {self.format_validation(self.validate())}")

    def run_epoch(self) -> None:
        self.state.train()
        meters: Dict[str, AverageMeter] = {}
        iters = self.gram.ITERS_PER_EPOCH
        rank, world_size = distributed.rank(), distributed.world_size()
        pixels = self._epoch_pixels(iters, rank, world_size)
        for self.batch_idx in range(iters):
            step = self.sampler.step
            tasks = [self.meta_task(t, mix_seed=(self.seed, step, i), pixels=pixels)
                     for i, t in enumerate(self.sampler.sample_tasks(self.gram.META_BATCH)) if i % world_size == rank]
            self.state.sampler_step.fill_(self.sampler.step)
            stats = self.learner.step(tasks, self.optim, meta_batch_size=self.gram.META_BATCH,
                                      reduce=distributed.all_reduce_sum_ if world_size > 1 else None)
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

    def _epoch_pixels(self, iters: int, rank: int, world_size: int) -> Optional[Iterator[RowPixels]]:
        """The pixel stream of this epoch's tasks (this rank's share): a copy of the task sampler draws them
        ahead, so the workers decode exactly the rows the sampler will ask for, in order."""
        if self.pixels is None:
            return None
        lookahead = copy.copy(self.sampler)
        rows = [array for _ in range(iters)
                for i, task in enumerate(lookahead.sample_tasks(self.gram.META_BATCH)) if i % world_size == rank
                for array in (task.support_ids, task.query_ids)]
        return self.pixels.stream(rows)

    def after_epoch(self) -> None:
        validation = self.validate()
        for key, value in validation.items():
            self.write_scalar(f"meta_val/{key}", value, self.epoch + 1)
        print(f"epoch [{self.epoch + 1}/{self.max_epoch}] validation: {self.format_validation(validation)}")
        if distributed.is_main():
            self.save_model(self.epoch, self.output_dir)
        distributed.barrier()  # no rank starts the next epoch before the checkpoint of this one is on disk

    def after_train(self) -> None:
        if not distributed.is_main():
            return
        test_time = self.train_test_time_regulator() if self.gram.TTA else None
        path = self.write_meta_checkpoint(test_time)
        self.write_validation()
        skipped = self.pixels.report() if self.pixels is not None else None
        if skipped:
            print(skipped)
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
        sampler = self._sampler(seed=self.seed + 20_000)
        meter = AverageMeter()
        for step in range(gram.TTA_ITERS):
            losses = []
            for task in sampler.sample_tasks(gram.META_BATCH):
                batch = self.pair_batch(task.query_ids)
                rows = np.asarray(batch.ids[:gram.TTA_IMAGES])
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
