"""Dassl's trainer classes and their lifecycle.

``TrainerBase`` keeps the registered models (each with its optimizer and scheduler) and
implements saving, loading and resuming them plus the generic loop::

    train():  before_train -> for each epoch: before_epoch, run_epoch, after_epoch -> after_train

``SimpleTrainer`` fills the hooks for classification (data manager, model, evaluator,
checkpoint per ``TRAIN.CHECKPOINT_FREQ`` and at the last epoch, final test), ``TrainerX``
trains on labelled data, ``TrainerXU`` on labelled + unlabelled batches. Trainers override
hooks (``build_model``, ``forward_backward``, ``parse_batch_train``, ``model_inference``...)
and never the loop. Checkpoints also carry the random-number-generator state, so a resumed
run ends with exactly the weights of an uninterrupted one.
"""
import datetime
import os.path as osp
import time
from collections import OrderedDict
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from dassl.data import DataManager
from dassl.evaluation import build_evaluator
from dassl.modeling import build_backbone, build_head
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import (
    AverageMeter,
    MetricMeter,
    check_state_dict_matches,
    count_num_param,
    load_checkpoint,
    load_pretrained_weights,
    mkdir_if_missing,
    remove_stale_temporaries,
    resume_from_checkpoint,
    save_checkpoint,
    tolist_if_not,
)
from dassl.utils.rng import capture_rng_state
from dassl.utils.torchtools import POINTER_FILE

__all__ = ["SimpleNet", "TrainerBase", "SimpleTrainer", "TrainerX", "TrainerXU"]


class SimpleNet(nn.Module):
    """Backbone (``MODEL.BACKBONE``) + optional head (``MODEL.HEAD``) + linear classifier."""

    def __init__(self, cfg, model_cfg, num_classes: int, **kwargs):
        super().__init__()
        self.backbone = build_backbone(
            model_cfg.BACKBONE.NAME, verbose=cfg.VERBOSE, pretrained=model_cfg.BACKBONE.PRETRAINED, **kwargs
        )
        fdim = self.backbone.out_features
        self.head = None
        if model_cfg.HEAD.NAME and model_cfg.HEAD.HIDDEN_LAYERS:
            self.head = build_head(
                model_cfg.HEAD.NAME,
                verbose=cfg.VERBOSE,
                in_features=fdim,
                hidden_layers=model_cfg.HEAD.HIDDEN_LAYERS,
                activation=model_cfg.HEAD.ACTIVATION,
                bn=model_cfg.HEAD.BN,
                dropout=model_cfg.HEAD.DROPOUT,
                **kwargs,
            )
            fdim = self.head.out_features
        self.classifier = nn.Linear(fdim, num_classes) if num_classes > 0 else None
        self._fdim = fdim

    @property
    def fdim(self) -> int:
        return self._fdim

    def forward(self, x: torch.Tensor, return_feature: bool = False):
        f = self.backbone(x)
        if self.head is not None:
            f = self.head(f)
        if self.classifier is None:
            return f
        y = self.classifier(f)
        return (y, f) if return_feature else y


class TrainerBase:
    """Model registry, checkpoints, tensorboard writer and the generic epoch loop."""

    def __init__(self):
        self._models: "OrderedDict[str, nn.Module]" = OrderedDict()
        self._optims: "OrderedDict[str, Optional[torch.optim.Optimizer]]" = OrderedDict()
        self._scheds: "OrderedDict[str, Optional[object]]" = OrderedDict()
        self._writer = None
        self._scalar_buffer: List[tuple] = []

    # ------------------------------------------------------------------ models
    def register_model(self, name: str = "model", model: nn.Module = None, optim=None, sched=None) -> None:
        """Register ``model`` (and its optimizer/scheduler) under ``name``: saved, loaded and stepped by name."""
        for attribute in ("_models", "_optims", "_scheds"):
            if self.__dict__.get(attribute) is None:
                raise AttributeError(f"Cannot register a model before super().__init__() call ({attribute} missing)")
        if name in self._models:
            raise KeyError(f'Found duplicate model names: "{name}" is already registered')
        self._models[name] = model
        self._optims[name] = optim
        self._scheds[name] = sched

    def get_model_names(self, names: Optional[Union[str, List[str]]] = None) -> List[str]:
        registered = list(self._models.keys())
        if names is None:
            return registered
        names = tolist_if_not(names)
        unknown = [name for name in names if name not in registered]
        if unknown:
            raise KeyError(f"Unknown model names {unknown}; registered: {registered}")
        return names

    def save_model(
        self, epoch: int, directory: str, is_best: bool = False, val_result: Optional[float] = None, model_name: str = ""
    ) -> None:
        """Save every registered model to ``directory/<name>/model.pth.tar-<epoch + 1>`` (or ``model_name``)."""
        rng_state = capture_rng_state()
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            save_checkpoint(
                {
                    "state_dict": self._models[name].state_dict(),
                    "epoch": epoch + 1,
                    "optimizer": optim.state_dict() if optim is not None else None,
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "val_result": val_result,
                    "rng_state": rng_state,
                    **self.checkpoint_metadata(),
                },
                osp.join(directory, name),
                is_best=is_best,
                model_name=model_name,
            )

    @property
    def allow_pickled_checkpoints(self) -> bool:
        """``TRAIN.ALLOW_PICKLED_CHECKPOINTS``: the explicit opt-in to unpickle checkpoints in full."""
        cfg = self.__dict__.get("cfg")
        return bool(cfg is not None and cfg.TRAIN.get("ALLOW_PICKLED_CHECKPOINTS", False))

    def checkpoint_metadata(self) -> Dict[str, object]:
        """Extra plain entries (strings, numbers) every checkpoint of this trainer carries (hook; none here)."""
        return {}

    def resume_model_if_exist(self, directory: str) -> int:
        """Resume every model from ``directory/<name>/checkpoint``; returns the epoch to start from (0 if none).
        Temporaries of checkpoint writes an earlier, killed run left there are removed first."""
        names = self.get_model_names()
        for folder in [directory] + [osp.join(directory, name) for name in names]:
            remove_stale_temporaries(folder)
        if not names or not all(osp.isfile(osp.join(directory, name, POINTER_FILE)) for name in names):
            print("No checkpoint found, train from scratch")
            return 0
        print(f"Found checkpoint at {directory} (will resume training)")
        start_epoch = 0
        for name in names:
            start_epoch = resume_from_checkpoint(
                osp.join(directory, name), self._models[name], self._optims[name], self._scheds[name],
                allow_pickle=self.allow_pickled_checkpoints,
            )
        return start_epoch

    def load_model(self, directory: str, epoch: Optional[int] = None) -> None:
        """Load ``model-best.pth.tar`` (or ``model.pth.tar-<epoch>``) of every model from ``directory``."""
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given (ignore this if it's done on purpose)")
            return
        model_file = "model-best.pth.tar" if epoch is None else f"model.pth.tar-{epoch}"
        for name in self.get_model_names():
            model_path = osp.join(directory, name, model_file)
            if not osp.exists(model_path):
                raise FileNotFoundError(f"No model at {model_path}")
            checkpoint = load_checkpoint(model_path, allow_pickle=self.allow_pickled_checkpoints)
            state_dict = checkpoint["state_dict"]
            check_state_dict_matches(self._models[name], state_dict, model_path, name)
            val_result = checkpoint.get("val_result")
            val_text = f", val_result={val_result:.1f}" if val_result is not None else ""
            print(f"Load {model_path} to {name} (epoch={checkpoint['epoch']}{val_text})")
            self._models[name].load_state_dict(state_dict)

    def set_model_mode(self, mode: str = "train", names=None) -> None:
        if mode not in ("train", "test", "eval"):
            raise KeyError(f"Unknown model mode {mode!r}; use 'train', 'test' or 'eval'")
        for name in self.get_model_names(names):
            self._models[name].train(mode == "train")

    def update_lr(self, names=None) -> None:
        for name in self.get_model_names(names):
            if self._scheds[name] is not None:
                self._scheds[name].step()

    def detect_anomaly(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss).all():
            raise FloatingPointError("Loss is infinite or NaN!")

    # ------------------------------------------------------------------ tensorboard
    SCALAR_BUFFER_SIZE = 64

    def init_writer(self, log_dir: str) -> None:
        if self.__dict__.get("_writer") is None:
            from torch.utils.tensorboard import SummaryWriter

            print(f"Initialize tensorboard (log_dir={log_dir})")
            # a queue longer than one burst of flush_scalars keeps add_scalar from blocking
            self._writer = SummaryWriter(log_dir=log_dir, max_queue=4 * self.SCALAR_BUFFER_SIZE)
            self._scalar_buffer = []

    def close_writer(self) -> None:
        if self._writer is not None:
            self.flush_scalars()
            self._writer.close()
            self._writer = None

    def write_scalar(self, tag: str, scalar_value: float, global_step: Optional[int] = None) -> None:
        """Log a scalar to tensorboard (a no-op until ``init_writer``, i.e. outside training).

        Scalars are buffered with their wall time and handed to the writer in bursts
        (``flush_scalars``): each hand-over wakes tensorboard's writer thread, which per
        batch would cost more than a small model's step.
        """
        if self._writer is None:
            return
        self._scalar_buffer.append((tag, scalar_value, global_step, time.time()))
        if len(self._scalar_buffer) >= self.SCALAR_BUFFER_SIZE:
            self.flush_scalars()

    def flush_scalars(self) -> None:
        """Hand the buffered scalars to the tensorboard writer."""
        if self._writer is None:
            return
        for tag, value, step, walltime in self._scalar_buffer:
            self._writer.add_scalar(tag, value, step, walltime=walltime)
        self._scalar_buffer = []

    # ------------------------------------------------------------------ loop and hooks
    def train(self, start_epoch: int, max_epoch: int) -> None:
        """Generic training loop."""
        self.start_epoch = start_epoch
        self.max_epoch = max_epoch
        self.before_train()
        for self.epoch in range(self.start_epoch, self.max_epoch):
            self.before_epoch()
            self.run_epoch()
            self.after_epoch()
        self.after_train()

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_epoch(self) -> None:
        pass

    def after_epoch(self) -> None:
        pass

    def run_epoch(self) -> None:
        raise NotImplementedError

    def test(self, split: Optional[str] = None):
        raise NotImplementedError

    def parse_batch_train(self, batch):
        raise NotImplementedError

    def parse_batch_test(self, batch):
        raise NotImplementedError

    def forward_backward(self, batch):
        raise NotImplementedError

    def model_inference(self, input):
        raise NotImplementedError

    def model_zero_grad(self, names=None) -> None:
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].zero_grad()

    def model_backward(self, loss: torch.Tensor) -> None:
        self.detect_anomaly(loss)
        loss.backward()

    def model_update(self, names=None) -> None:
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].step()

    def model_backward_and_update(self, loss: torch.Tensor, names=None) -> None:
        self.model_zero_grad(names)
        self.model_backward(loss)
        self.model_update(names)


class SimpleTrainer(TrainerBase):
    """Classification trainer: data manager, model, evaluator, checkpoints and testing."""

    def __init__(self, cfg):
        super().__init__()
        self.check_cfg(cfg)
        self.device = torch.device("cuda") if torch.cuda.is_available() and cfg.USE_CUDA else torch.device("cpu")
        self.start_epoch = self.epoch = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.batch_idx = self.num_batches = 0
        self.output_dir = cfg.OUTPUT_DIR
        self.cfg = cfg
        self.build_data_loader()
        self.build_model()
        self.evaluator = build_evaluator(cfg, lab2cname=self.lab2cname)
        self.best_result = -np.inf

    def check_cfg(self, cfg) -> None:
        """Check trainer-specific config requirements (optional hook)."""

    def build_data_loader(self) -> None:
        """Create ``dm``, the loaders, ``num_classes``, ``num_source_domains`` and ``lab2cname``."""
        dm = DataManager(self.cfg)
        self.train_loader_x = dm.train_loader_x
        self.train_loader_u = dm.train_loader_u
        self.val_loader = dm.val_loader
        self.test_loader = dm.test_loader
        self.num_classes = dm.num_classes
        self.num_source_domains = dm.num_source_domains
        self.lab2cname = dm.lab2cname
        self.dm = dm

    def build_model(self) -> None:
        """Build ``SimpleNet`` with its optimizer and scheduler and register it as ``model``."""
        cfg = self.cfg
        print("Building model")
        self.model = SimpleNet(cfg, cfg.MODEL, self.num_classes)
        if cfg.MODEL.INIT_WEIGHTS:
            load_pretrained_weights(self.model, cfg.MODEL.INIT_WEIGHTS, allow_pickle=self.allow_pickled_checkpoints)
        self.model.to(self.device)
        print(f"# params: {count_num_param(self.model):,}")
        self.optim = build_optimizer(self.model, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_model("model", self.model, self.optim, self.sched)
        device_count = torch.cuda.device_count() if self.device.type == "cuda" else 0
        if device_count > 1:
            print(f"Detected {device_count} GPUs (use nn.DataParallel)")
            self.model = nn.DataParallel(self.model)

    def train(self) -> None:
        super().train(self.start_epoch, self.max_epoch)

    def before_train(self) -> None:
        directory = self.cfg.RESUME if self.cfg.RESUME else self.cfg.OUTPUT_DIR
        self.start_epoch = self.resume_model_if_exist(directory)
        writer_dir = osp.join(self.output_dir, "tensorboard")
        mkdir_if_missing(writer_dir)
        self.init_writer(writer_dir)
        self.time_start = time.time()

    def after_train(self) -> None:
        print("Finish training")
        if not self.cfg.TEST.NO_TEST:
            if self.cfg.TEST.FINAL_MODEL == "best_val":
                print("Deploy the model with the best val performance")
                self.load_model(self.output_dir)
            else:
                print("Deploy the last-epoch model")
            self.test()
        elapsed = str(datetime.timedelta(seconds=round(time.time() - self.time_start)))
        print(f"Elapsed: {elapsed}")
        self.close_writer()

    def after_epoch(self) -> None:
        last_epoch = (self.epoch + 1) == self.max_epoch
        freq = self.cfg.TRAIN.CHECKPOINT_FREQ
        meet_checkpoint_freq = freq > 0 and (self.epoch + 1) % freq == 0
        if not self.cfg.TEST.NO_TEST and self.cfg.TEST.FINAL_MODEL == "best_val":
            curr_result = self.test(split="val")
            if curr_result > self.best_result:
                self.best_result = curr_result
                self.save_model(self.epoch, self.output_dir, val_result=curr_result, model_name="model-best.pth.tar")
        if meet_checkpoint_freq or last_epoch:
            self.save_model(self.epoch, self.output_dir)

    @torch.no_grad()
    def test(self, split: Optional[str] = None) -> float:
        """Evaluate on ``split`` (``TEST.SPLIT`` by default; val falls back to test); returns the first metric."""
        self.set_model_mode("eval")
        self.evaluator.reset()
        split = self.cfg.TEST.SPLIT if split is None else split
        if split == "val" and self.val_loader is not None:
            data_loader = self.val_loader
        else:
            split = "test"
            data_loader = self.test_loader
        print(f"Evaluate on the *{split}* set")
        for batch in tqdm(data_loader):
            input, label = self.parse_batch_test(batch)
            self.evaluator.process(self.model_inference(input), label)
        results = self.evaluator.evaluate()
        for name, value in results.items():
            self.write_scalar(f"{split}/{name}", value, self.epoch)
        self.flush_scalars()
        return list(results.values())[0]

    def model_inference(self, input):
        return self.model(input)

    def parse_batch_test(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def get_current_lr(self, names=None) -> float:
        name = self.get_model_names(names)[0]
        return self._optims[name].param_groups[0]["lr"]

    # ------------------------------------------------------------------ progress reporting
    def log_batch(self, losses: MetricMeter, batch_time: AverageMeter, data_time: AverageMeter) -> None:
        """Print Dassl's progress line every ``TRAIN.PRINT_FREQ`` batches and log scalars to tensorboard."""
        if self._writer is not None:
            n_iter = self.epoch * self.num_batches + self.batch_idx
            for name, meter in losses.meters.items():
                self.write_scalar("train/" + name, meter.avg, n_iter)
            self.write_scalar("train/lr", self.get_current_lr(), n_iter)
        print_freq = self.cfg.TRAIN.PRINT_FREQ
        if (self.batch_idx + 1) % print_freq == 0 or self.num_batches < print_freq:
            remaining = self.num_batches - self.batch_idx - 1 + (self.max_epoch - self.epoch - 1) * self.num_batches
            eta = str(datetime.timedelta(seconds=int(batch_time.avg * remaining)))
            print(
                f"epoch [{self.epoch + 1}/{self.max_epoch}] "
                f"batch [{self.batch_idx + 1}/{self.num_batches}] "
                f"time {batch_time.val:.3f} ({batch_time.avg:.3f}) "
                f"data {data_time.val:.3f} ({data_time.avg:.3f}) "
                f"{losses} "
                f"lr {self.get_current_lr():.4e} "
                f"eta {eta}"
            )
            self.flush_scalars()

    def run_batches(self, batches: Iterable[tuple]) -> None:
        """Run ``forward_backward(*batch)`` for each batch tuple, with timing and logging."""
        self.set_model_mode("train")
        losses, batch_time, data_time = MetricMeter(), AverageMeter(), AverageMeter()
        end = time.time()
        for self.batch_idx, batch in enumerate(batches):
            data_time.update(time.time() - end)
            loss_summary = self.forward_backward(*batch)
            batch_time.update(time.time() - end)
            losses.update(loss_summary)
            self.log_batch(losses, batch_time, data_time)
            end = time.time()


class TrainerXU(SimpleTrainer):
    """Trains on a labelled (``train_loader_x``) and an unlabelled (``train_loader_u``) loader.

    ``TRAIN.COUNT_ITER`` sets the epoch length: ``train_x``, ``train_u`` or ``smaller_one``;
    the shorter loader restarts when it runs out.
    """

    def run_epoch(self) -> None:
        len_x, len_u = len(self.train_loader_x), len(self.train_loader_u)
        count_iter = self.cfg.TRAIN.COUNT_ITER
        lengths = {"train_x": len_x, "train_u": len_u, "smaller_one": min(len_x, len_u)}
        if count_iter not in lengths:
            raise ValueError(f"TRAIN.COUNT_ITER must be one of {sorted(lengths)}, got {count_iter!r}")
        self.num_batches = lengths[count_iter]
        self.run_batches(self._paired_batches())

    def _paired_batches(self) -> Iterator[Tuple[Dict, Dict]]:
        """``num_batches`` pairs (labelled, unlabelled); a loader that runs out starts over."""
        iterators = {"x": iter(self.train_loader_x), "u": iter(self.train_loader_u)}
        loaders = {"x": self.train_loader_x, "u": self.train_loader_u}

        def draw(key: str) -> Dict:
            try:
                return next(iterators[key])
            except StopIteration:
                iterators[key] = iter(loaders[key])
                return next(iterators[key])

        for _ in range(self.num_batches):
            yield draw("x"), draw("u")

    def parse_batch_train(self, batch_x, batch_u):
        return (
            batch_x["img"].to(self.device),
            batch_x["label"].to(self.device),
            batch_u["img"].to(self.device),
        )


class TrainerX(SimpleTrainer):
    """Trains on labelled data only: one pass over ``train_loader_x`` per epoch."""

    def run_epoch(self) -> None:
        self.num_batches = len(self.train_loader_x)
        self.run_batches((batch,) for batch in self.train_loader_x)

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device), batch["domain"].to(self.device)
