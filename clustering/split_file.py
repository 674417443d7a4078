"""The split file: what the clustering stage hands to meta-training and test-time tuning.

On disk a split is two files in one folder:

- ``split.json`` (the header, human-readable): ``format`` ("gram-cluster-split"), ``version`` (1),
  ``method`` ("kmeans" or "cmhc"), ``clip_fingerprint``, ``settings`` (every clustering setting),
  ``num_pairs``, ``corpus_ids_sha256`` (sha256 of the ids joined by newlines), ``arrays`` (name and
  sha256 of the arrays file) and ``levels``: one entry per level, coarse to fine, with
  ``num_clusters``, ``sizes`` (pairs per cluster), ``complexity`` (per cluster, see ``complexity``)
  and ``parent`` (for each cluster, the cluster of the previous level holding it; null at level 0);
- ``split-<sha256 prefix>.npz`` (the arrays, compressed): ``corpus_ids`` (unicode, row order of the
  features) and per level ``l``: ``level<l>_assignment`` (int32, cluster of every pair),
  ``level<l>_image_prototypes`` / ``level<l>_text_prototypes`` (float32, (m, d)) and
  ``level<l>_joint_prototypes`` (float32, (m, 2d)), all normalised.

Writing is atomic: the arrays file is written under a name derived from its content, then the
header is replaced in one ``os.replace``; arrays files no header refers to are removed afterwards.
A reader therefore always sees a header and the arrays it was written with. Loading checks the
format, the arrays' hash, the ids' hash and, when asked, the CLIP checkpoint fingerprint.
"""
from __future__ import annotations

import glob
import hashlib
import io
import json
import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from fileio.atomic import write_atomically, write_json_atomic

FORMAT = "gram-cluster-split"
VERSION = 1
HEADER_NAME = "split.json"
ARRAY_FIELDS = ("assignment", "image_prototypes", "text_prototypes", "joint_prototypes")


class SplitFileError(ValueError):
    """A split file that is missing, malformed or made for another model/corpus (one-line message)."""


@dataclass
class ClusterLevel:
    num_clusters: int
    assignment: np.ndarray  # (n,) int32: cluster of each pair (row of the features)
    sizes: np.ndarray  # (m,) int64: pairs per cluster
    image_prototypes: np.ndarray  # (m, d) float32, normalised mean image feature
    text_prototypes: np.ndarray  # (m, d) float32, normalised mean text feature
    joint_prototypes: np.ndarray  # (m, 2d) float32, normalised mean joint feature
    complexity: np.ndarray  # (m,) float64, mean 1 over the level
    parent: Optional[np.ndarray]  # (m,) int64 cluster of the previous level; None at level 0


@dataclass
class ClusterSplit:
    method: str
    levels: list[ClusterLevel]  # coarse to fine
    corpus_ids: list[str]
    clip_fingerprint: str
    settings: dict

    @property
    def num_pairs(self) -> int:
        return len(self.corpus_ids)

    def check_corpus_ids(self, ids: Sequence[str], source: str = "the corpus") -> None:
        """Refuse a corpus whose ids (in row order) are not the ones this split was made from."""
        if ids_digest(ids) != ids_digest(self.corpus_ids):
            raise SplitFileError(f"{source} ({len(ids)} pairs) is not the corpus this split was made from "
                                 f"({self.num_pairs} pairs, ids sha256 {ids_digest(self.corpus_ids)[:16]})")


    def check_corpus_source(self, corpus: str, fingerprint: str, split_path: str) -> None:
        """Refuse a corpus (``TRAINER.GRAM.CORPUS``) whose fingerprint is not the one the split recorded;
        a split written before the fingerprint was recorded is accepted with a warning."""
        recorded = self.settings.get("corpus_fingerprint")
        if recorded is None:
            print(f"Warning: split file {split_path} records no corpus fingerprint; cannot check that {corpus} is "
                  "the corpus it was made from")
        elif recorded != fingerprint:
            raise SplitFileError(f"corpus {corpus} (fingerprint {fingerprint}) is not the corpus split file "
                                 f"{split_path} was made from ({self.settings.get('corpus')}, fingerprint {recorded})")


def ids_digest(ids: Sequence[str]) -> str:
    """sha256 of the ids joined by newlines (hex)."""
    digest = hashlib.sha256()
    for corpus_id in ids:
        digest.update(str(corpus_id).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def header_path(path: str) -> str:
    """``path`` itself if it names a file, else ``path/split.json``."""
    return os.path.join(path, HEADER_NAME) if os.path.isdir(path) or not path.endswith(".json") else path


def _arrays_bytes(split: ClusterSplit) -> bytes:
    arrays = {"corpus_ids": np.asarray(split.corpus_ids, dtype=str)}
    for index, level in enumerate(split.levels):
        for name in ARRAY_FIELDS:
            arrays[f"level{index}_{name}"] = getattr(level, name)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def save_split(split: ClusterSplit, out_dir: str) -> str:
    """Write ``split`` into ``out_dir`` atomically; return the header's path."""
    os.makedirs(out_dir, exist_ok=True)
    payload = _arrays_bytes(split)
    arrays_sha = hashlib.sha256(payload).hexdigest()
    arrays_name = f"split-{arrays_sha[:16]}.npz"
    write_atomically(os.path.join(out_dir, arrays_name), lambda stream: stream.write(payload), binary=True)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "method": split.method,
        "clip_fingerprint": split.clip_fingerprint,
        "settings": split.settings,
        "num_pairs": split.num_pairs,
        "corpus_ids_sha256": ids_digest(split.corpus_ids),
        "arrays": {"file": arrays_name, "sha256": arrays_sha},
        "levels": [{"num_clusters": level.num_clusters,
                    "sizes": level.sizes.tolist(),
                    "complexity": level.complexity.tolist(),
                    "parent": None if level.parent is None else level.parent.tolist()}
                   for level in split.levels],
    }
    path = os.path.join(out_dir, HEADER_NAME)
    write_json_atomic(path, header)
    for stale in glob.glob(os.path.join(out_dir, "split-*.npz")):
        if os.path.basename(stale) != arrays_name:
            os.remove(stale)
    return path


def _read_header(path: str) -> dict:
    if not os.path.isfile(path):
        raise SplitFileError(f"split file not found: {path} (run cluster.py or scripts/gram/cluster.sh first)")
    try:
        with open(path, "r", encoding="utf-8") as handle:
            header = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise SplitFileError(f"split file {path} is not readable JSON: {error}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SplitFileError(f"{path} is not a split file (expected \"format\": \"{FORMAT}\")")
    if header.get("version") != VERSION:
        raise SplitFileError(f"split file {path} has format version {header.get('version')}, "
                             f"this code reads version {VERSION}; re-run cluster.py")
    return header


def _read_arrays(path: str, header: dict) -> dict:
    arrays_path = os.path.join(os.path.dirname(path), header["arrays"]["file"])
    if not os.path.isfile(arrays_path):
        raise SplitFileError(f"split file {path}: its arrays file {arrays_path} is missing")
    with open(arrays_path, "rb") as handle:
        payload = handle.read()
    if hashlib.sha256(payload).hexdigest() != header["arrays"]["sha256"]:
        raise SplitFileError(f"split file {path}: {arrays_path} does not match the sha256 in the header "
                             "(corrupt or replaced); re-run cluster.py")
    with np.load(io.BytesIO(payload), allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


def load_split(path: str, expected_clip_fingerprint: Optional[str] = None) -> ClusterSplit:
    """Read the split at ``path`` (its folder or its ``split.json``).

    With ``expected_clip_fingerprint``, a split made with another CLIP checkpoint is refused.
    """
    path = header_path(path)
    header = _read_header(path)
    if expected_clip_fingerprint is not None and header["clip_fingerprint"] != expected_clip_fingerprint:
        raise SplitFileError(f"split file {path} was made with CLIP {header['clip_fingerprint']}, "
                             f"but the model is {expected_clip_fingerprint}")
    arrays = _read_arrays(path, header)
    corpus_ids = arrays["corpus_ids"].tolist()
    if ids_digest(corpus_ids) != header["corpus_ids_sha256"]:
        raise SplitFileError(f"split file {path}: the corpus ids do not match corpus_ids_sha256 in the header")
    levels = []
    for index, entry in enumerate(header["levels"]):
        fields = {name: arrays[f"level{index}_{name}"] for name in ARRAY_FIELDS}
        levels.append(ClusterLevel(
            num_clusters=int(entry["num_clusters"]),
            sizes=np.asarray(entry["sizes"], dtype=np.int64),
            complexity=np.asarray(entry["complexity"], dtype=np.float64),
            parent=None if entry["parent"] is None else np.asarray(entry["parent"], dtype=np.int64),
            **fields))
    return ClusterSplit(method=header["method"], levels=levels, corpus_ids=corpus_ids,
                        clip_fingerprint=header["clip_fingerprint"], settings=header["settings"])
