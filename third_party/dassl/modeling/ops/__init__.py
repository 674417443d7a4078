"""Small tensor operations used by trainers (``dassl.modeling.ops.utils``)."""
from .utils import create_onehot, ema_model_update, linear_rampup, sharpen_prob, sigmoid_rampup

__all__ = ["create_onehot", "ema_model_update", "linear_rampup", "sharpen_prob", "sigmoid_rampup"]
