"""Results tooling: parse run folders, build paper tables and plots, run protocol sweeps.

Modules: ``names`` (dataset names and protocol dataset lists), ``results`` (read one run folder),
``protocols`` (output-folder scheme and train.py command lines per protocol), ``tables`` (paper tables),
``plots`` (few-shot curves, base/new/H bars), ``runner`` (job queue over GPU slots), ``reference``
(published numbers), ``protocol_card`` (the card and ``results.json`` each run writes), ``synthetic_runs``
(run folders for tests and benchmarks, and a stand-in ``train.py``), ``cli`` (entry-point argument checks).
"""
