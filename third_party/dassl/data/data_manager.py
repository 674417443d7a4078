"""``DataManager`` (dataset + transforms + loaders), ``DatasetWrapper`` and ``build_data_loader``.

Loaders follow Dassl (sampler by name, ``drop_last`` for training when the data fills a
batch, pinned memory on GPU) and add: persistent workers when ``NUM_WORKERS > 0`` (no worker
start-up cost per epoch) with per-epoch worker reseeding (see ``worker_rng``), so training
is reproducible and resumable with any number of workers.
"""
from typing import Any, Dict, List, Optional, Sequence

import torch
import torchvision.transforms as T
from tabulate import tabulate
from torch.utils.data import Dataset as TorchDataset

from dassl.utils import read_image

from .datasets import build_dataset
from .samplers import build_sampler
from .transforms import INTERPOLATION_MODES, build_transform
from .worker_rng import EpochSeed, EpochSeededDataLoader

__all__ = ["DataManager", "DatasetWrapper", "build_data_loader"]


def build_data_loader(
    cfg,
    sampler_type: str = "SequentialSampler",
    data_source: Optional[Sequence] = None,
    batch_size: int = 64,
    n_domain: int = 0,
    n_ins: int = 2,
    tfm=None,
    is_train: bool = True,
    dataset_wrapper=None,
) -> torch.utils.data.DataLoader:
    """A loader over ``data_source`` (a list of ``Datum``) wrapped by ``dataset_wrapper``."""
    if not data_source:
        raise ValueError("Cannot build a data loader: the data source is empty")
    sampler = build_sampler(
        sampler_type, cfg=cfg, data_source=data_source, batch_size=batch_size, n_domain=n_domain, n_ins=n_ins
    )
    wrapper_cls = DatasetWrapper if dataset_wrapper is None else dataset_wrapper
    dataset = wrapper_cls(cfg, data_source, transform=tfm, is_train=is_train)
    epoch_seed = EpochSeed()
    if isinstance(dataset, DatasetWrapper):
        dataset.epoch_seed = epoch_seed
    num_workers = cfg.DATALOADER.NUM_WORKERS
    return EpochSeededDataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=is_train and len(data_source) >= batch_size,
        pin_memory=torch.cuda.is_available() and cfg.USE_CUDA,
        persistent_workers=num_workers > 0,
        epoch_seed=epoch_seed,
    )


class DataManager:
    """Builds the dataset named in ``cfg`` and its train_x / train_u / val / test loaders."""

    def __init__(self, cfg, custom_tfm_train=None, custom_tfm_test=None, dataset_wrapper=None):
        dataset = build_dataset(cfg)
        if custom_tfm_train is None:
            tfm_train = build_transform(cfg, is_train=True)
        else:
            print("* Using custom transform for training")
            tfm_train = custom_tfm_train
        if custom_tfm_test is None:
            tfm_test = build_transform(cfg, is_train=False)
        else:
            print("* Using custom transform for testing")
            tfm_test = custom_tfm_test

        loader_x = cfg.DATALOADER.TRAIN_X
        loader_u = loader_x if cfg.DATALOADER.TRAIN_U.SAME_AS_X else cfg.DATALOADER.TRAIN_U

        def train_loader(data_source, loader_cfg):
            return build_data_loader(
                cfg, sampler_type=loader_cfg.SAMPLER, data_source=data_source, batch_size=loader_cfg.BATCH_SIZE,
                n_domain=loader_cfg.N_DOMAIN, n_ins=loader_cfg.N_INS, tfm=tfm_train, is_train=True,
                dataset_wrapper=dataset_wrapper,
            )

        def test_loader(data_source):
            return build_data_loader(
                cfg, sampler_type=cfg.DATALOADER.TEST.SAMPLER, data_source=data_source,
                batch_size=cfg.DATALOADER.TEST.BATCH_SIZE, tfm=tfm_test, is_train=False,
                dataset_wrapper=dataset_wrapper,
            )

        self.dataset = dataset
        self.train_loader_x = train_loader(dataset.train_x, loader_x)
        self.train_loader_u = train_loader(dataset.train_u, loader_u) if dataset.train_u else None
        self.val_loader = test_loader(dataset.val) if dataset.val else None
        self.test_loader = test_loader(dataset.test)
        self._num_classes = dataset.num_classes
        self._num_source_domains = len(cfg.DATASET.SOURCE_DOMAINS)
        self._lab2cname = dataset.lab2cname
        if cfg.VERBOSE:
            self.show_dataset_summary(cfg)

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def num_source_domains(self) -> int:
        return self._num_source_domains

    @property
    def lab2cname(self) -> Dict[int, str]:
        return self._lab2cname

    def show_dataset_summary(self, cfg) -> None:
        table = [["Dataset", cfg.DATASET.NAME]]
        if cfg.DATASET.SOURCE_DOMAINS:
            table.append(["Source", cfg.DATASET.SOURCE_DOMAINS])
        if cfg.DATASET.TARGET_DOMAINS:
            table.append(["Target", cfg.DATASET.TARGET_DOMAINS])
        table.append(["# classes", f"{self.num_classes:,}"])
        table.append(["# train_x", f"{len(self.dataset.train_x):,}"])
        if self.dataset.train_u:
            table.append(["# train_u", f"{len(self.dataset.train_u):,}"])
        if self.dataset.val:
            table.append(["# val", f"{len(self.dataset.val):,}"])
        table.append(["# test", f"{len(self.dataset.test):,}"])
        print(tabulate(table))


class DatasetWrapper(TorchDataset):
    """Reads and transforms one ``Datum`` into ``{"img", "label", "domain", "impath", "index"}``.

    ``transform`` may be a list: the k-th transform's output goes to ``img``, ``img2``, ...
    With ``DATALOADER.K_TRANSFORMS = K > 1`` (training only) ``img`` is a list of K views;
    ``DATALOADER.RETURN_IMG0`` adds ``img0``, the image only resized and normalized.
    """

    epoch_seed: Optional[EpochSeed] = None

    def __init__(self, cfg, data_source: Sequence, transform=None, is_train: bool = False):
        self.cfg = cfg
        self.data_source = data_source
        self.transform = transform
        self.is_train = is_train
        self.k_tfm = cfg.DATALOADER.K_TRANSFORMS if is_train else 1
        self.return_img0 = cfg.DATALOADER.RETURN_IMG0
        if self.k_tfm > 1 and transform is None:
            raise ValueError(f"Cannot augment the image {self.k_tfm} times because transform is None")
        plain = [T.Resize(cfg.INPUT.SIZE, interpolation=INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]), T.ToTensor()]
        if "normalize" in cfg.INPUT.TRANSFORMS:
            plain.append(T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD))
        self.to_tensor = T.Compose(plain)

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, idx: int) -> Dict[str, Any]:
        if self.epoch_seed is not None:
            self.epoch_seed.sync_worker()
        item = self.data_source[idx]
        output: Dict[str, Any] = {"label": item.label, "domain": item.domain, "impath": item.impath, "index": idx}
        img0 = read_image(item.impath)
        if self.transform is None:
            output["img"] = img0
        elif isinstance(self.transform, (list, tuple)):
            for k, tfm in enumerate(self.transform):
                output["img" if k == 0 else f"img{k + 1}"] = self._transform_image(tfm, img0)
        else:
            output["img"] = self._transform_image(self.transform, img0)
        if self.return_img0:
            output["img0"] = self.to_tensor(img0)
        return output

    def _transform_image(self, tfm, img0) -> Any:
        views: List[Any] = [tfm(img0) for _ in range(self.k_tfm)]
        return views[0] if len(views) == 1 else views
