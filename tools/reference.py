"""Published numbers (DESIGN.md section 6) shipped as CSV files in ``tools/reference/``.

The tables print them beside measured numbers. ``tools/reference/README.md`` says where each value
comes from. Method names are the trainer names (``CoOp``, ``MaPLe``); dataset names are the tables'
(``Flowers102``, ``DTD``, see ``tools.names``).
"""
import csv
import os
from functools import lru_cache

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")


def _read_rows(filename: str) -> list[dict]:
    path = os.path.join(REFERENCE_DIR, filename)
    try:
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    except OSError as error:
        raise FileNotFoundError(f"{path}: published-number table missing ({error.strerror})") from None


@lru_cache(maxsize=None)
def base2new() -> dict[tuple[str, str], dict[str, float]]:
    """{(method, dataset): {"base", "new", "hm"}}; dataset ``Average`` holds the 11-dataset average."""
    return {
        (row["method"], row["dataset"]): {key: float(row[key]) for key in ("base", "new", "hm")}
        for row in _read_rows("base2new.csv")
    }


def _wide(filename: str) -> dict[str, dict[str, float]]:
    table = {}
    for row in _read_rows(filename):
        method = row.pop("method")
        table[method] = {column: float(value) for column, value in row.items() if value not in ("", None)}
    return table


@lru_cache(maxsize=None)
def cross_dataset() -> dict[str, dict[str, float]]:
    """{method: {dataset or "target_avg": accuracy}} for ImageNet -> 10 datasets."""
    return _wide("cross_dataset.csv")


@lru_cache(maxsize=None)
def domain_generalization() -> dict[str, dict[str, float]]:
    """{method: {dataset or "target_avg": accuracy}} for ImageNet -> V2 / Sketch / A / R."""
    return _wide("domain_generalization.csv")


@lru_cache(maxsize=None)
def few_shot_average() -> dict[str, dict[int, float]]:
    """{method: {shots: 11-dataset average accuracy}}."""
    return {
        method: {int(shots): value for shots, value in row.items()}
        for method, row in _wide("few_shot_avg.csv").items()
    }
