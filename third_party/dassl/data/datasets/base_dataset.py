"""``Datum`` (one labelled image) and ``DatasetBase`` (train_x / train_u / val / test lists).

Semantics follow Dassl: the number of classes is ``max(label) + 1`` over ``train_x``; class
names come from ``train_x``; ``generate_fewshot_dataset`` draws ``num_shots`` items per label
with ``random.sample`` (all items, or ``random.choices`` with ``repeat``, when a class is
smaller), so the same ``random`` seed gives the same few-shot split as Dassl.
"""
import os.path as osp
import random
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple, Union

__all__ = ["Datum", "DatasetBase"]


class Datum:
    """One data instance: image path, class label, domain label and class name (read-only).

    ``impath`` must name an existing file; the empty string is allowed for items that are not
    backed by a file (e.g. cached features).
    """

    def __init__(self, impath: str = "", label: int = 0, domain: int = 0, classname: str = ""):
        if not isinstance(impath, str):
            raise TypeError(f"Datum impath must be a str, got {type(impath).__name__}")
        if impath and not osp.isfile(impath):
            raise FileNotFoundError(f"Datum: no image file at {impath}")
        self._impath = impath
        self._label = label
        self._domain = domain
        self._classname = classname

    @property
    def impath(self) -> str:
        return self._impath

    @property
    def label(self) -> int:
        return self._label

    @property
    def domain(self) -> int:
        return self._domain

    @property
    def classname(self) -> str:
        return self._classname

    def __repr__(self) -> str:
        return f"Datum(impath={self._impath!r}, label={self._label}, domain={self._domain}, classname={self._classname!r})"


class DatasetBase:
    """Base of every dataset: holds the splits and derives the class count and names.

    Subclasses set ``dataset_dir`` (the folder under ``cfg.DATASET.ROOT``) and, for domain
    shift datasets, ``domains``.
    """

    dataset_dir = ""
    domains: List[str] = []

    def __init__(
        self,
        train_x: Optional[List[Datum]] = None,
        train_u: Optional[List[Datum]] = None,
        val: Optional[List[Datum]] = None,
        test: Optional[List[Datum]] = None,
    ):
        self._train_x = train_x
        self._train_u = train_u
        self._val = val
        self._test = test
        self._num_classes = self.get_num_classes(train_x)
        self._lab2cname, self._classnames = self.get_lab2cname(train_x)

    @property
    def train_x(self) -> Optional[List[Datum]]:
        return self._train_x

    @property
    def train_u(self) -> Optional[List[Datum]]:
        return self._train_u

    @property
    def val(self) -> Optional[List[Datum]]:
        return self._val

    @property
    def test(self) -> Optional[List[Datum]]:
        return self._test

    @property
    def lab2cname(self) -> Dict[int, str]:
        return self._lab2cname

    @property
    def classnames(self) -> List[str]:
        return self._classnames

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @staticmethod
    def get_num_classes(data_source: Sequence[Datum]) -> int:
        """``max(label) + 1`` over ``data_source``."""
        if not data_source:
            raise ValueError("Cannot count classes: the training split (train_x) is empty")
        return max(item.label for item in data_source) + 1

    @staticmethod
    def get_lab2cname(data_source: Sequence[Datum]) -> Tuple[Dict[int, str], List[str]]:
        """``({label: classname}, classnames sorted by label)`` over ``data_source``."""
        mapping = {item.label: item.classname for item in data_source}
        labels = sorted(mapping)
        return mapping, [mapping[label] for label in labels]

    def check_input_domains(self, source_domains: Sequence[str], target_domains: Sequence[str]) -> None:
        if len(source_domains) == 0:
            raise ValueError("source_domains (list) is empty")
        if len(target_domains) == 0:
            raise ValueError("target_domains (list) is empty")
        self.is_input_domain_valid(source_domains)
        self.is_input_domain_valid(target_domains)

    def is_input_domain_valid(self, input_domains: Sequence[str]) -> None:
        for domain in input_domains:
            if domain not in self.domains:
                raise ValueError(f"Input domain must belong to {self.domains}, but got [{domain}]")

    def generate_fewshot_dataset(
        self, *data_sources: List[Datum], num_shots: int = -1, repeat: bool = False
    ) -> Union[List[Datum], Tuple[List[Datum], ...]]:
        """Keep ``num_shots`` random items per class of each data source.

        ``num_shots < 1`` returns the sources unchanged. A class with fewer items keeps all of
        them, or (``repeat=True``) draws ``num_shots`` with replacement. One source in -> one list
        out; several sources -> a list of lists.
        """
        if num_shots < 1:
            return data_sources[0] if len(data_sources) == 1 else data_sources
        print(f"Creating a {num_shots}-shot dataset")
        output = []
        for data_source in data_sources:
            sampled: List[Datum] = []
            for items in self.split_dataset_by_label(data_source).values():
                if len(items) >= num_shots:
                    sampled.extend(random.sample(items, num_shots))
                elif repeat:
                    sampled.extend(random.choices(items, k=num_shots))
                else:
                    sampled.extend(items)
            output.append(sampled)
        return output[0] if len(output) == 1 else output

    @staticmethod
    def _group_by(data_source: Sequence[Datum], attribute: str) -> Dict[int, List[Datum]]:
        groups: Dict[int, List[Datum]] = defaultdict(list)
        for item in data_source:
            groups[getattr(item, attribute)].append(item)
        return groups

    def split_dataset_by_label(self, data_source: Sequence[Datum]) -> Dict[int, List[Datum]]:
        """``{label: [items]}`` in order of first appearance."""
        return self._group_by(data_source, "label")

    def split_dataset_by_domain(self, data_source: Sequence[Datum]) -> Dict[int, List[Datum]]:
        """``{domain: [items]}`` in order of first appearance."""
        return self._group_by(data_source, "domain")
