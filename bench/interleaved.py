"""Interleaved timing for the ratio benchmarks in ``bench/``: every case runs once per round, in an
order rotated from round to round, so a change of load on a shared machine hits all cases alike;
each round records wall time and CPU time (of this process, all its threads), and a ratio is taken
within each round, then summarised as min / median / max over rounds.
"""
import statistics
import time
from typing import Callable, Dict, List, Sequence

Timings = Dict[str, Dict[str, List[float]]]  # case -> {"wall_s": [...], "cpu_s": [...]} per round
CLOCKS = ("cpu_s", "wall_s")


def rotated(names: Sequence[str], round_index: int) -> List[str]:
    """The order of ``names`` in round ``round_index``: rotated by one case per round."""
    shift = round_index % len(names)
    return list(names[shift:]) + list(names[:shift])


def interleaved_rounds(cases: Dict[str, Callable[[], None]], rounds: int, repeats: int = 1,
                       warmup: bool = True) -> Timings:
    """Time every case ``repeats`` times in a row per round (the mean is the round's figure), for
    ``rounds`` rounds; round ``r`` starts at case ``r mod len(cases)``."""
    names = list(cases)
    if warmup:
        for name in names:
            cases[name]()
    timings: Timings = {name: {clock: [] for clock in CLOCKS} for name in names}
    for round_index in range(rounds):
        for name in rotated(names, round_index):
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(repeats):
                cases[name]()
            timings[name]["wall_s"].append((time.perf_counter() - wall) / repeats)
            timings[name]["cpu_s"].append((time.process_time() - cpu) / repeats)
    return timings


def round_ratios(timings: Timings, numerator: str, denominator: str) -> Dict[str, List[float]]:
    """Per-round ``numerator / denominator`` for each clock."""
    return {clock: [top / bottom for top, bottom in zip(timings[numerator][clock], timings[denominator][clock])]
            for clock in CLOCKS}


def spread(values: Sequence[float]) -> Dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def format_spread(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    """``min / median / max`` of ``values * scale``."""
    summary = spread(values)
    return " / ".join(f"{summary[key] * scale:.{digits}f}" for key in ("min", "median", "max"))
