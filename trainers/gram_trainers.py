"""The GRAM variants of the prompt trainers: each is its baseline plus ``GRAMMixin``.

TPT_GRAM also swaps TPT's test-time gradient for the structure-induced regulator's output.

They read the baseline's config section (``TRAINER.COOP`` for CoOp_GRAM, ...) and
``TRAINER.GRAM`` (``META_CKPT``, ``LOAD_INIT``, ``REGULATE``); see ``trainers.gram.mixin``.
"""
import torch
from dassl.engine import TRAINER_REGISTRY

from trainers.cocoop import CoCoOp
from trainers.coop import CoOp
from trainers.kgcoop import KgCoOp
from trainers.maple import MaPLe
from trainers.prometar import ProMetaR
from trainers.gram.meta_checkpoint import MetaCheckpointError
from trainers.gram.mixin import GRAMMixin
from trainers.gram.structure_tta import load_test_time_regulator
from trainers.tpt import TPT
from trainers.vpt import VPT


@TRAINER_REGISTRY.register()
class CoOp_GRAM(GRAMMixin, CoOp):
    """CoOp from GRAM's meta-learned context, trained with regulated gradients."""


@TRAINER_REGISTRY.register()
class CoCoOp_GRAM(GRAMMixin, CoCoOp):
    """CoCoOp from GRAM's meta-learned context and meta-net, trained with regulated gradients."""


@TRAINER_REGISTRY.register()
class VPT_GRAM(GRAMMixin, VPT):
    """VPT from GRAM's meta-learned visual prompts, trained with regulated gradients."""


@TRAINER_REGISTRY.register()
class MaPLe_GRAM(GRAMMixin, MaPLe):
    """MaPLe from GRAM's meta-learned text prompts and coupling functions, trained with regulated
    gradients (one regulator per prompt tensor, so textual and visual sides each get their own).
    A UNIGRAM meta checkpoint (``configs/gram/maple.yaml``) is such a checkpoint."""


@TRAINER_REGISTRY.register()
class KgCoOp_GRAM(GRAMMixin, KgCoOp):
    """The README's example: a user's own trainer (here KgCoOp) gets GRAM from the same mixin."""


@TRAINER_REGISTRY.register()
class TPT_GRAM(GRAMMixin, TPT):
    """TPT from the meta-learned prompt, its test-time gradient regulated by the structure-induced
    regulator of the meta checkpoint (``TRAINER.GRAM.TTA`` at meta-training); with
    ``TRAINER.GRAM.REGULATOR identity`` the step is exactly TPT's."""

    uses_training_regulator = False

    def gradient_rewrite(self):
        if not self.cfg.TRAINER.GRAM.REGULATE or self.cfg.TRAINER.GRAM.REGULATOR == "identity":
            return None
        if not self.meta_checkpoint.test_time:
            raise MetaCheckpointError(f"{self.cfg.TRAINER.GRAM.META_CKPT} has no test-time regulator: "
                                      "meta-train with TRAINER.GRAM.TTA True")
        regulator, encoder = load_test_time_regulator(self.meta_checkpoint.test_time)
        regulator, encoder = regulator.to(self.device), encoder.to(self.device)

        @torch.no_grad()
        def regulate(named_params, image_feature):
            grads = {n: p.grad.float() for n, p in named_params.items() if p.grad is not None}
            regulated, _ = regulator(grads, encoder(image_feature.float())[0])
            for name, grad in regulated.items():
                named_params[name].grad.copy_(grad.to(named_params[name].grad.dtype))

        return regulate


@TRAINER_REGISTRY.register()
class ProMetaR_GRAM(GRAMMixin, ProMetaR):
    """ProMetaR from GRAM's meta-learned IVLP prompts; psi_phi rewrites the prompt gradient (the v-net's
    gated gradient, and the query-loss gradient) before each step of the prompt optimizer. ProMetaR's own
    v-net still trains as in ProMetaR; GRAM's regulator is frozen, as for every GRAM variant."""
