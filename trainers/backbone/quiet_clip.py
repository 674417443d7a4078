"""Silence the one warning openai-clip prints on import: ``clip/clip.py`` imports ``pkg_resources`` (for a
version check), and setuptools warns that ``pkg_resources is deprecated`` in every run and every ``--help``.

Importing this module installs a filter for exactly that warning, raised from that module; every other
warning, from clip or elsewhere, is shown as before. ``trainers`` imports it first, so any import of ``clip``
through the trainers is covered; a module outside ``trainers`` that imports ``clip`` itself (the clustering
stage's encoder, the toy world, the tiny test CLIPs) imports this first.
"""
import warnings

PKG_RESOURCES_WARNING = r"pkg_resources is deprecated as an API"
CLIP_IMPORTING_MODULE = r"clip\.clip"

warnings.filterwarnings("ignore", message=PKG_RESOURCES_WARNING, category=UserWarning, module=CLIP_IMPORTING_MODULE)
