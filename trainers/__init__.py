"""The trainers, registered in Dassl's ``TRAINER_REGISTRY`` when this package is imported.

Baselines, one file each: ``ZeroshotCLIP`` (``zsclip``), ``CoOp``, ``CoCoOp``, ``KgCoOp``, ``VPT``, ``MaPLe``,
``ProMetaR``, ``TPT``; their GRAM variants (``gram_trainers``): ``CoOp_GRAM``, ``CoCoOp_GRAM``, ``VPT_GRAM``,
``MaPLe_GRAM``, ``ProMetaR_GRAM``, ``KgCoOp_GRAM``, ``TPT_GRAM``. The CLIP machinery they share is ``backbone/``, the GRAM core
``gram/``, the config tree ``config``.

Every module of this package is imported here, so a new trainer is one new file: ``trainers/<method>.py``
with its class (``@TRAINER_REGISTRY.register()``) and its keys (``@config_section``). A ``trainers/`` folder
elsewhere on ``sys.path`` (without an ``__init__.py``) adds its modules to the package the same way, so a
trainer can also live outside the repository.
"""
import importlib
import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)

for _module in pkgutil.iter_modules(__path__):
    if not _module.ispkg:
        importlib.import_module(f"{__name__}.{_module.name}")
