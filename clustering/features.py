"""Paired image/text feature matrices: validation, per-row normalisation and joint features.

The clustering stage works on two row-aligned float matrices, ``image`` and ``text`` (one row per
image-text pair, as the encoder writes them). Every pass over them runs in chunks of rows, so the
extra memory stays a few chunks however large the corpus is; no full-size copy is ever made.

Joint feature (the choice this project makes for "joint image-text features"): the concatenation
of the L2-normalised image and text features, scaled by 1/sqrt(2) so it has unit norm,
``z = [x / |x|, y / |y|] / sqrt(2)``. Its squared distance is the mean of the two per-modality squared
distances, so k-means on ``z`` weighs both modalities equally and neither can cancel the other
(an average ``x + y`` could).
"""
from __future__ import annotations

from typing import Iterator, Optional, Sequence

import numpy as np

JOINT_SCALE = np.float32(1.0 / np.sqrt(2.0))


class FeatureError(ValueError):
    """Feature matrices that cannot be clustered (one-line message naming the row)."""


def chunk_ranges(num_rows: int, chunk_size: int) -> Iterator[slice]:
    """Consecutive row slices of at most ``chunk_size`` rows covering ``range(num_rows)``."""
    for start in range(0, num_rows, chunk_size):
        yield slice(start, min(start + chunk_size, num_rows))


def _describe_row(row: int, ids: Optional[Sequence[str]]) -> str:
    return f"row {row} (corpus id {ids[row]!r})" if ids is not None else f"row {row}"


def row_norms(
    features: np.ndarray, name: str, chunk_size: int, ids: Optional[Sequence[str]] = None
) -> np.ndarray:
    """L2 norm of every row, refusing rows with NaN/inf or zero norm (the error names the row)."""
    norms = np.empty(features.shape[0], dtype=np.float32)
    for rows in chunk_ranges(features.shape[0], chunk_size):
        chunk = features[rows]
        norms[rows] = np.sqrt(np.einsum("ij,ij->i", chunk, chunk, dtype=np.float64))
        valid = np.isfinite(norms[rows]) & (norms[rows] > 0)
        if not valid.all():
            row = rows.start + int(np.argmin(valid))
            if np.isfinite(features[row]).all():
                problem = "has zero norm" if norms[row] == 0 else "overflows float32"
            else:
                problem = "contains NaN or inf"
            raise FeatureError(f"{name} features: {_describe_row(row, ids)} {problem}")
    return norms


def refuse_nonfinite_rows(image: np.ndarray, text: np.ndarray, ids: Sequence[str], source: str,
                          chunk_size: int = 65536, shown: int = 5) -> None:
    """Refuse feature matrices with NaN/inf rows, naming the first ``shown`` of them (row and corpus id)."""
    bad = []
    for rows in chunk_ranges(image.shape[0], chunk_size):
        finite = np.isfinite(image[rows]).all(axis=1) & np.isfinite(text[rows]).all(axis=1)
        bad.extend((rows.start + np.flatnonzero(~finite)).tolist())
    if bad:
        named = ", ".join(_describe_row(row, ids) for row in bad[:shown])
        more = f" and {len(bad) - shown} more" if len(bad) > shown else ""
        raise FeatureError(f"{source}: {len(bad)} feature row(s) contain NaN or inf: {named}{more}; "
                           "re-encode the corpus (cluster.py)")


def check_feature_pair(image: np.ndarray, text: np.ndarray) -> None:
    """Refuse matrices that are not 2-D, row-aligned and floating point."""
    for name, matrix in (("image", image), ("text", text)):
        if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.floating):
            raise FeatureError(f"{name} features must be a 2-D float matrix, got shape {matrix.shape} "
                               f"and dtype {matrix.dtype}")
    if image.shape[0] != text.shape[0]:
        raise FeatureError(f"image and text features must have one row per pair, got {image.shape[0]} "
                           f"image rows and {text.shape[0]} text rows")


class PairedFeatures:
    """Row-aligned image and text features with their row norms (validated once, at construction)."""

    def __init__(self, image: np.ndarray, text: np.ndarray, ids: Optional[Sequence[str]] = None,
                 chunk_size: int = 16384) -> None:
        check_feature_pair(image, text)
        if ids is not None and len(ids) != image.shape[0]:
            raise FeatureError(f"{len(ids)} corpus ids given for {image.shape[0]} feature rows")
        self.image = image
        self.text = text
        self.chunk_size = chunk_size
        self.image_norms = row_norms(image, "image", chunk_size, ids)
        self.text_norms = row_norms(text, "text", chunk_size, ids)

    @property
    def num_pairs(self) -> int:
        return self.image.shape[0]

    @property
    def dim(self) -> int:
        """Width of one modality's features (the joint feature is twice as wide)."""
        return self.image.shape[1]

    def normalised(self, rows: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit-norm float32 image and text features of ``rows`` (a slice or an index array)."""
        image = (self.image[rows] / self.image_norms[rows][:, None]).astype(np.float32, copy=False)
        text = (self.text[rows] / self.text_norms[rows][:, None]).astype(np.float32, copy=False)
        return image, text

    def joint(self, rows: np.ndarray) -> np.ndarray:
        """Joint features of the pairs ``rows`` (an index array), built chunk by chunk into one array."""
        out = np.empty((rows.shape[0], 2 * self.dim), dtype=np.float32)
        for part in chunk_ranges(rows.shape[0], self.chunk_size):
            image_unit, text_unit = self.normalised(rows[part])
            np.multiply(image_unit, JOINT_SCALE, out=out[part, :self.dim])
            np.multiply(text_unit, JOINT_SCALE, out=out[part, self.dim:])
        return out

    def chunks(self) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
        """``(rows, unit image features, unit text features)`` for consecutive row chunks."""
        for rows in chunk_ranges(self.num_pairs, self.chunk_size):
            yield (rows, *self.normalised(rows))


def joint_features(image_unit: np.ndarray, text_unit: np.ndarray) -> np.ndarray:
    """Unit-norm joint features ``[x, y] / sqrt(2)`` of unit image and text features (float32)."""
    joint = np.concatenate([image_unit, text_unit], axis=1)
    joint *= JOINT_SCALE
    return joint
