"""Top-k classification accuracy (Dassl's ``compute_accuracy``)."""
from typing import List, Sequence, Union

import torch

__all__ = ["compute_accuracy"]


def compute_accuracy(
    output: Union[torch.Tensor, Sequence[torch.Tensor]], target: torch.Tensor, topk: Sequence[int] = (1,)
) -> List[torch.Tensor]:
    """Percentage of rows of ``output`` (batch, classes) whose top-k predictions contain ``target``.

    Returns one 1-element tensor per k. A tuple/list ``output`` uses its first element.
    """
    if isinstance(output, (tuple, list)):
        output = output[0]
    batch_size = target.size(0)
    _, pred = output.topk(max(topk), dim=1, largest=True, sorted=True)
    hits = pred.t().eq(target.view(1, -1))
    return [hits[:k].reshape(-1).float().sum(0, keepdim=True).mul_(100.0 / batch_size) for k in topk]
