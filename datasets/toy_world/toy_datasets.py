"""Dassl dataset classes of the toy world, one per entry of ``specs.DATASET_SPECS`` and ``specs.HELDOUT_SPECS``,
in DATASET_REGISTRY.

They are ordinary CoOp-layout datasets (``datasets.base.CoOpStyleDataset``): ``make_toy_world.py`` (or
``datasets.toy_world.build_world``) writes their images and split files, after which ``train.py
--dataset-config-file configs/datasets/toy_shapes.yaml`` reads them like any CoOp dataset (few-shot sampling,
base/new subsampling). The shifted-domain datasets are test-only, as CoOp's ImageNet variants: their split file
lists test images only, and those images also serve as ``train_x`` and ``val`` (so a ``DataManager`` can be
built to evaluate on them).
"""
from dassl.data.datasets import DATASET_REGISTRY

from datasets import base
from datasets.toy_world.specs import DATASET_SPECS, HELDOUT_SPECS, ToyDatasetSpec

BUILD_HINT = "generate it with: python make_toy_world.py --root <DATASET.ROOT>"


class ToyDataset(base.CoOpStyleDataset):
    """A toy-world dataset. A subclass sets ``spec``, which names its folder and split file.

    The split file is written by the world generator and never derived here.
    """

    spec: ToyDatasetSpec

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "spec" in cls.__dict__:
            cls.dataset_dir = cls.spec.dataset_dir
            cls.split_filename = cls.spec.split_filename
            cls.layout = f"{cls.spec.dataset_dir}/{{images/<class folder>/, {cls.spec.split_filename}}}"

    def make_split(self) -> base.Split:
        raise FileNotFoundError(f"{type(self).__name__}: split file {self.split_path} not found; {BUILD_HINT}")

    def find_image_dir(self) -> str:
        try:
            return super().find_image_dir()
        except FileNotFoundError as error:
            raise FileNotFoundError(f"{error}; {BUILD_HINT}") from None


class ToyTestOnlyDataset(ToyDataset):
    """A shifted-domain test set: its test images double as ``train_x`` and ``val``."""

    def read_or_make_split(self) -> base.Split:
        _, _, test = super().read_or_make_split()
        return test, test, test


@DATASET_REGISTRY.register()
class ToyShapes(ToyDataset):
    spec = DATASET_SPECS["ToyShapes"]


@DATASET_REGISTRY.register()
class ToyColorShapes(ToyDataset):
    spec = DATASET_SPECS["ToyColorShapes"]


@DATASET_REGISTRY.register()
class ToyTextures(ToyDataset):
    spec = DATASET_SPECS["ToyTextures"]


@DATASET_REGISTRY.register()
class ToyCounting(ToyDataset):
    spec = DATASET_SPECS["ToyCounting"]


@DATASET_REGISTRY.register()
class ToyShapesSketch(ToyTestOnlyDataset):
    spec = DATASET_SPECS["ToyShapesSketch"]


@DATASET_REGISTRY.register()
class ToyShapesNoisy(ToyTestOnlyDataset):
    spec = DATASET_SPECS["ToyShapesNoisy"]


@DATASET_REGISTRY.register()
class ToyShapesFaded(ToyTestOnlyDataset):
    spec = DATASET_SPECS["ToyShapesFaded"]


@DATASET_REGISTRY.register()
class ToyShapesPatterned(ToyTestOnlyDataset):
    spec = DATASET_SPECS["ToyShapesPatterned"]


@DATASET_REGISTRY.register()
class ToySizeShapes(ToyDataset):
    spec = HELDOUT_SPECS["ToySizeShapes"]


@DATASET_REGISTRY.register()
class ToyPositions(ToyDataset):
    spec = HELDOUT_SPECS["ToyPositions"]


@DATASET_REGISTRY.register()
class ToyColors(ToyDataset):
    spec = HELDOUT_SPECS["ToyColors"]
