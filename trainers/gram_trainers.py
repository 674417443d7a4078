"""The GRAM variants of the prompt trainers: each is its baseline plus ``GRAMMixin``.

TPT_GRAM also swaps TPT's test-time gradient for the structure-induced regulator's output.

They read the baseline's config section (``TRAINER.COOP`` for CoOp_GRAM, ...) and
``TRAINER.GRAM`` (``META_CKPT``, ``LOAD_INIT``, ``REGULATE``); see ``trainers.gram.mixin``.
"""
import torch
from dassl.engine import TRAINER_REGISTRY
from yacs.config import CfgNode as CN

from trainers.cocoop import CoCoOp
from trainers.config import config_section
from trainers.coop import CoOp
from trainers.kgcoop import KgCoOp
from trainers.maple import MaPLe
from trainers.prometar import ProMetaR
from trainers.gram.meta_checkpoint import MetaCheckpointError
from trainers.gram.mixin import GRAMMixin
from trainers.gram.structure_tta import load_test_time_regulator
from trainers.tpt import TPT
from trainers.vpt import VPT


@config_section
def gram_config(cfg: CN) -> None:
    """GRAM's keys (``TRAINER.GRAM``): the GRAM trainers', meta-training's (``meta_train.py``) and the
    test-time regulator's."""
    cfg.TRAINER.GRAM = CN()
    # downstream (GRAM trainers)
    cfg.TRAINER.GRAM.META_CKPT = ""  # meta checkpoint (prompt init + regulator)
    cfg.TRAINER.GRAM.LOAD_INIT = True  # start the prompts from the meta checkpoint
    cfg.TRAINER.GRAM.REGULATE = True  # rewrite prompt gradients with the frozen regulator
    # regulator
    cfg.TRAINER.GRAM.REGULATOR = "lowrank"  # "lowrank" or "identity"
    cfg.TRAINER.GRAM.RANK = 16  # hidden width of the low-rank gradient transform
    cfg.TRAINER.GRAM.GATE_HIDDEN = 16  # hidden width of the mixing-coefficient gate
    # meta-training (meta_train.py)
    cfg.TRAINER.GRAM.METHOD = "CoOp"  # the prompt method whose prompts are meta-learned
    cfg.TRAINER.GRAM.SPLIT_FILE = ""  # split.json written by cluster.py
    cfg.TRAINER.GRAM.FEATURE_CACHE = ""  # encoded-corpus cache (default: the one the split names)
    cfg.TRAINER.GRAM.CORPUS = ""  # corpus manifest (needed for methods that prompt the image tower)
    cfg.TRAINER.GRAM.PIXEL_WORKERS = 2  # DataLoader workers decoding those pixels ahead (0: in the main process)
    cfg.TRAINER.GRAM.PIXEL_PREFETCH = 2  # batches each worker decodes ahead
    cfg.TRAINER.GRAM.LEVEL = -1  # hierarchy level whose clusters are the domains
    cfg.TRAINER.GRAM.ADAPTIVE_TASKS = True  # complexity-driven task construction
    cfg.TRAINER.GRAM.SUPPORT_SIZE = 16
    cfg.TRAINER.GRAM.QUERY_SIZE = 16
    cfg.TRAINER.GRAM.META_BATCH = 4  # tasks per outer step
    cfg.TRAINER.GRAM.ITERS_PER_EPOCH = 50  # outer steps per epoch (OPTIM.MAX_EPOCH epochs)
    cfg.TRAINER.GRAM.INNER_LR = 0.1
    cfg.TRAINER.GRAM.INNER_STEPS = 1
    cfg.TRAINER.GRAM.FIRST_ORDER = False
    cfg.TRAINER.GRAM.CONSISTENCY_WEIGHT = 0.1  # pull of the mixing coefficient toward task similarity
    cfg.TRAINER.GRAM.GRADIENT_SIMILARITY = False  # add cos(grad_S, grad_Q) to the similarity target
    cfg.TRAINER.GRAM.MIXUP_ALPHA = 0.5  # query mixup across domains (0 = off)
    cfg.TRAINER.GRAM.VAL_TASKS = 8  # fixed tasks scored after every epoch
    cfg.TRAINER.GRAM.HOLDOUT_CLUSTERS = 0  # clusters kept out of meta-training; validation tasks come from them
    cfg.TRAINER.GRAM.VAL_INNER_STEPS = 0  # regulated steps that validation adapts with (0: the inner loop's)
    cfg.TRAINER.GRAM.VAL_INNER_LR = 0.0  # their step size (0: INNER_LR)
    # test time (TPT_GRAM)
    cfg.TRAINER.GRAM.TTA = False  # meta-train the structure-induced test-time regulator too
    cfg.TRAINER.GRAM.TTA_TEMPERATURE = 0.05  # softmax temperature of prototype affinities
    cfg.TRAINER.GRAM.TTA_INNER_LR = 0.005  # step size of the test-time step during meta-training (TPT's LR)
    cfg.TRAINER.GRAM.TTA_ITERS = 50  # outer steps of the test-time regulator (after the main stage)
    cfg.TRAINER.GRAM.TTA_IMAGES = 4  # query images per task scored in those steps


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
