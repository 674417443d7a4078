"""Every trainer's config keys, added to Dassl's default tree in one place.

``extend_cfg`` is what ``train.py`` (and the other entry points) call before merging the
dataset and trainer YAML files, so a key typed on the command line that no trainer declares
is refused by yacs with its name. Key names follow the reference implementations (CoOp,
CoCoOp, MaPLe, the VPT/IVLP trainers of MaPLe's repository, ProMetaR, TPT).
"""
from yacs.config import CfgNode as CN


def _add_coop(cfg: CN) -> None:
    cfg.TRAINER.COOP = CN()
    cfg.TRAINER.COOP.N_CTX = 16  # number of context vectors
    cfg.TRAINER.COOP.CSC = False  # class-specific context
    cfg.TRAINER.COOP.CTX_INIT = ""  # initialization words
    cfg.TRAINER.COOP.PREC = "fp16"  # fp16, fp32, amp
    cfg.TRAINER.COOP.CLASS_TOKEN_POSITION = "end"  # 'middle' or 'end' or 'front'
    cfg.TRAINER.COOP.CACHE_IMAGE_FEATURES = False  # frozen-image-tower fast path
    cfg.TRAINER.COOP.CACHE_VIEWS = 1  # augmented views cached per training image
    cfg.TRAINER.COOP.TEXT_CHUNK = 256  # classes encoded per text-encoder pass

    cfg.TRAINER.KGCOOP = CN()
    cfg.TRAINER.KGCOOP.W = 8.0  # weight of the pull toward hand-crafted text features


def _add_cocoop(cfg: CN) -> None:
    cfg.TRAINER.COCOOP = CN()
    cfg.TRAINER.COCOOP.N_CTX = 16
    cfg.TRAINER.COCOOP.CTX_INIT = ""
    cfg.TRAINER.COCOOP.PREC = "fp16"
    cfg.TRAINER.COCOOP.CACHE_IMAGE_FEATURES = False
    cfg.TRAINER.COCOOP.CACHE_VIEWS = 1
    cfg.TRAINER.COCOOP.TEXT_CHUNK = 256


def _add_zsclip(cfg: CN) -> None:
    cfg.TRAINER.ZSCLIP = CN()
    cfg.TRAINER.ZSCLIP.ENSEMBLE = False  # average the prompt-ensemble templates
    cfg.TRAINER.ZSCLIP.PREC = "fp16"
    cfg.TRAINER.ZSCLIP.TEXT_CHUNK = 256


def _add_vpt(cfg: CN) -> None:
    cfg.TRAINER.VPT = CN()
    cfg.TRAINER.VPT.N_CTX_VISION = 8  # visual prompt length per layer
    cfg.TRAINER.VPT.PROMPT_DEPTH_VISION = 12  # number of layers with prompts (1 = shallow)
    cfg.TRAINER.VPT.CTX_INIT = "a photo of a"  # fixed text template
    cfg.TRAINER.VPT.PREC = "fp16"
    cfg.TRAINER.VPT.TEXT_CHUNK = 256


def _add_maple(cfg: CN) -> None:
    cfg.TRAINER.MAPLE = CN()
    cfg.TRAINER.MAPLE.N_CTX = 2
    cfg.TRAINER.MAPLE.CTX_INIT = "a photo of a"
    cfg.TRAINER.MAPLE.PREC = "fp16"
    cfg.TRAINER.MAPLE.PROMPT_DEPTH = 9
    cfg.TRAINER.MAPLE.TEXT_CHUNK = 256


def _add_prometar(cfg: CN) -> None:
    cfg.TRAINER.PROMETAR = CN()
    cfg.TRAINER.PROMETAR.N_CTX_VISION = 4
    cfg.TRAINER.PROMETAR.N_CTX_TEXT = 4
    cfg.TRAINER.PROMETAR.CTX_INIT = "a photo of a"
    cfg.TRAINER.PROMETAR.PREC = "fp16"
    cfg.TRAINER.PROMETAR.PROMPT_DEPTH_VISION = 9
    cfg.TRAINER.PROMETAR.PROMPT_DEPTH_TEXT = 9
    # regularizer weights: the values ProMetaR's code applies (it hard-codes 50 and 20)
    cfg.TRAINER.PROMETAR.TEXT_LOSS_WEIGHT = 50.0
    cfg.TRAINER.PROMETAR.IMAGE_LOSS_WEIGHT = 20.0
    cfg.TRAINER.PROMETAR.ADAPT_LR = 0.0005  # inner (MAML) step size
    cfg.TRAINER.PROMETAR.LR_RATIO = 0.0005  # scale of the query (outer) loss
    cfg.TRAINER.PROMETAR.FAST_ADAPTATION = False  # first-order inner step
    cfg.TRAINER.PROMETAR.MIXUP_ALPHA = 0.5
    cfg.TRAINER.PROMETAR.MIXUP_BETA = 0.5
    cfg.TRAINER.PROMETAR.DIM_RATE = 8  # hidden size of the regulator = dim // DIM_RATE
    cfg.TRAINER.PROMETAR.TEXT_CHUNK = 256

    # second optimizer, for the regulator ("v-net"), with Dassl's OPTIM keys
    cfg.OPTIM_VNET = cfg.OPTIM.clone()


def _add_tpt(cfg: CN) -> None:
    cfg.TRAINER.TPT = CN()
    cfg.TRAINER.TPT.N_CTX = 4
    cfg.TRAINER.TPT.CTX_INIT = "a photo of a"
    cfg.TRAINER.TPT.PREC = "fp16"
    cfg.TRAINER.TPT.N_VIEWS = 64  # the test image plus N_VIEWS - 1 augmented views
    cfg.TRAINER.TPT.SELECTION_P = 0.1  # fraction of most confident views kept
    cfg.TRAINER.TPT.LR = 5e-3
    cfg.TRAINER.TPT.STEPS = 1
    cfg.TRAINER.TPT.AUGMIX = False  # AugMix views (fine-grained sets) instead of random crops
    cfg.TRAINER.TPT.COOP_INIT = ""  # optional CoOp output dir / checkpoint to start from (TPT+CoOp)
    cfg.TRAINER.TPT.TEXT_CHUNK = 256


def _add_gram(cfg: CN) -> None:
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
    cfg.TRAINER.GRAM.VAL_INNER_STEPS = 0  # plain-SGD-like regulated steps that validation adapts with (0: the inner loop's)
    cfg.TRAINER.GRAM.VAL_INNER_LR = 0.0  # their step size (0: INNER_LR)
    # test time (TPT_GRAM)
    cfg.TRAINER.GRAM.TTA = False  # meta-train the structure-induced test-time regulator too
    cfg.TRAINER.GRAM.TTA_TEMPERATURE = 0.05  # softmax temperature of prototype affinities
    cfg.TRAINER.GRAM.TTA_INNER_LR = 0.005  # step size of the test-time step during meta-training (TPT's LR)
    cfg.TRAINER.GRAM.TTA_ITERS = 50  # outer steps of the test-time regulator (after the main stage)
    cfg.TRAINER.GRAM.TTA_IMAGES = 4  # query images per task scored in those steps


def extend_cfg(cfg: CN) -> None:
    """Add the keys of every trainer in this toolbox (and CoOp's dataset keys) to ``cfg``."""
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all, base or new
    _add_coop(cfg)
    _add_cocoop(cfg)
    _add_zsclip(cfg)
    _add_vpt(cfg)
    _add_maple(cfg)
    _add_prometar(cfg)
    _add_tpt(cfg)
    _add_gram(cfg)
