"""Names of the files one pipeline stage writes for the next (one definition for Python and the scripts,
which read it through ``python -m tools.protocols shell``)."""

META_CHECKPOINT_NAME = "meta_checkpoint.pth"  # meta_train.py writes <output>/<this>; the GRAM trainers read it
