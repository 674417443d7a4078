"""Read the dataset caches CoOp stores as pickles without running code from them.

CoOp's few-shot caches (``split_fewshot/shot_{K}-seed_{S}.pkl``) and ImageNet's ``preprocessed.pkl`` are
pickled dicts of lists of Dassl ``Datum`` objects. Unpickling can call any importable function, so these
files are read through an unpickler that admits only ``Datum`` (from the bundled engine or upstream Dassl)
and plain builtin types; anything else is refused with ``UnsafePickleError`` naming the file and the class.
The format stays CoOp's: files written by CoOp load unchanged.
"""
from __future__ import annotations

import pickle
from typing import Any

DATUM_MODULES = ("dassl.data.datasets.base_dataset", "dassl.data.datasets")
SAFE_BUILTINS = frozenset({"object", "list", "dict", "tuple", "set", "frozenset", "str", "bytes", "int", "float",
                           "bool", "complex", "NoneType"})


class UnsafePickleError(ValueError):
    """A cache file names a class or function that the cache format never holds (one-line message)."""


class DatumUnpickler(pickle.Unpickler):
    """Admits ``Datum``, builtin container/scalar types and the helper older pickle protocols use for objects."""

    def __init__(self, file, path: str) -> None:
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        # protocols 0-2 name builtins and copyreg by their Python 2 names
        admitted = (module in DATUM_MODULES and name == "Datum") \
            or (module in ("builtins", "__builtin__") and name in SAFE_BUILTINS) \
            or (module in ("copyreg", "copy_reg") and name == "_reconstructor")
        if admitted:
            return super().find_class(module, name)
        raise UnsafePickleError(f"{self.path}: refusing to unpickle {module}.{name} (this cache holds only Datum "
                                "objects and builtin types); delete the file if it is yours, to rebuild it")


def load_datum_pickle(path: str) -> Any:
    """Unpickle ``path`` admitting only ``Datum`` and builtin types."""
    with open(path, "rb") as file:
        return DatumUnpickler(file, path).load()
