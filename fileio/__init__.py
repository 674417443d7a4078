"""File helpers every layer of the toolbox shares: atomic writes (``atomic``) and file fingerprints (``hashing``).

It imports nothing from the toolbox, so the trainers, the clustering stage, the datasets and the tools
can all use it.
"""
