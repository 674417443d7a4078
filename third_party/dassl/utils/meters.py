"""Running averages of losses and metrics (Dassl's ``AverageMeter`` / ``MetricMeter``)."""
from collections import defaultdict
from typing import Dict, Optional, Union

import torch

__all__ = ["AverageMeter", "MetricMeter"]

Number = Union[float, int, torch.Tensor]


def _as_float(value: Number) -> float:
    return value.item() if isinstance(value, torch.Tensor) else value


class AverageMeter:
    """Current value and running (or exponential moving, ``ema=True``) average."""

    def __init__(self, ema: bool = False):
        self.ema = ema
        self.reset()

    def reset(self) -> None:
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def update(self, val: Number, n: int = 1) -> None:
        val = _as_float(val)
        self.val = val
        self.sum += val * n
        self.count += n
        if self.ema:
            self.avg = self.avg * 0.9 + val * 0.1
        else:
            self.avg = self.sum / self.count


class MetricMeter:
    """A named set of ``AverageMeter``s, printed as ``name val (avg)`` pairs."""

    def __init__(self, delimiter: str = " "):
        self.meters: Dict[str, AverageMeter] = defaultdict(AverageMeter)
        self.delimiter = delimiter

    def update(self, input_dict: Optional[Dict[str, Number]]) -> None:
        if input_dict is None:
            return
        if not isinstance(input_dict, dict):
            raise TypeError("Input to MetricMeter.update() must be a dictionary")
        for name, value in input_dict.items():
            self.meters[name].update(value)

    def __str__(self) -> str:
        return self.delimiter.join(
            f"{name} {meter.val:.4f} ({meter.avg:.4f})" for name, meter in self.meters.items()
        )
