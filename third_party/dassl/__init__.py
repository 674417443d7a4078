"""GRAM-Dassl's bundled engine: a from-scratch implementation of Dassl.pytorch's public API.

Only the part of Dassl (https://github.com/KaiyangZhou/Dassl.pytorch) that CoOp-family
prompt-learning code uses is provided, with Dassl's module paths, names, signatures, config
keys and defaults, checkpoint layout and log lines, so that CoOp's own ``train.py`` and
trainers run on it unchanged. It works on current torch (no ``verbose`` argument in the LR
schedulers, checkpoints loadable with ``torch.load(weights_only=True)``).

``IS_BUNDLED_ENGINE`` tells this engine apart from upstream Dassl at run time.
"""

__version__ = "0.6.3"
IS_BUNDLED_ENGINE = True
