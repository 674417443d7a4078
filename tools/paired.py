"""Paired differences over seeds: how much a method changes a baseline's accuracy, with a 95% interval.

Two methods run with the same seeds see the same few-shot samples, so their accuracies are paired by seed.
For seeds ``s = 1..n`` with differences ``d_s = treatment_s - baseline_s``, the interval is Student's t
interval of the mean difference,

    mean(d) +- t_{(1 + level) / 2, n - 1} * std(d, ddof=1) / sqrt(n),

which with 3 seeds is mean +- 4.30 * std / sqrt(3): wide, as three seeds warrant. An interval that
excludes 0 is a difference the seeds support at that level.
"""
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class PairedDifference:
    mean: float
    low: float
    high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


def paired_difference(treatment: Mapping[int, float], baseline: Mapping[int, float],
                      level: float = 0.95) -> PairedDifference:
    """Mean of ``treatment[s] - baseline[s]`` over the seeds both have, with its t interval at ``level``."""
    seeds = sorted(set(treatment) & set(baseline))
    if len(seeds) < 2:
        raise ValueError(f"a paired interval needs >= 2 seeds that both methods ran, got {seeds}")
    if not 0 < level < 1:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")
    differences = np.array([treatment[s] - baseline[s] for s in seeds], dtype=float)
    mean = float(differences.mean())
    half_width = float(stats.t.ppf((1 + level) / 2, len(seeds) - 1) * differences.std(ddof=1) / np.sqrt(len(seeds)))
    return PairedDifference(mean, mean - half_width, mean + half_width, len(seeds))


def keep_unless_beaten(scores: Mapping[Any, Mapping], current: Any, level: float = 0.95) -> tuple:
    """The choosing rule of the toy-world selection benchmarks: the candidate with the best mean replaces
    ``current`` only if its paired advantage over it excludes 0. ``scores`` maps each candidate to its
    ``{pairing key: score}`` (higher is better). Returns ``(chosen, best, advantage of best over current)``."""
    means = {name: float(np.mean(list(values.values()))) for name, values in scores.items()}
    best = max(means, key=means.get)
    advantage = paired_difference(scores[best], scores[current], level)
    return (best if best != current and advantage.excludes_zero else current), best, advantage
