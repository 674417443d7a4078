"""Every ``bash`` block of README.md runs as pasted, on a miniature of the datasets and of the toy world
with a tiny CLIP.

The convention (what the test changes, and nothing else):

- The blocks run in README order in one bash process (an ``export`` reaches the later blocks, as in a user's
  terminal), with ``set -euo pipefail``, inside a copy of the repository's tracked files, so that the
  relative ``output/`` and ``data/`` of the commands land in the copy.
- Substituted: the value of every ``export DATA=...`` (a folder holding a miniature of each dataset's real
  layout, ``datasets.fixtures``, with an image-text corpus at ``cc3m/train.tsv``) and of every ``export
  CLIP=...`` (a tiny CLIP in OpenAI's checkpoint format); an ``export OPTS="..."`` keeps its value with the
  miniature's options (below) added; and ``.venv/`` (the environment running the tests), since the copy has
  no ``.venv`` of its own.
- Set in the environment, as the README says the scripts and ``run_protocol.py`` read it: ``OPTS`` (the
  tiny CLIP, its 32-pixel input, one epoch, a few meta-training steps, a few test-time views), ``SEEDS=1``,
  and ``K``/``LEVELS`` of ``cluster.sh`` (a 40-pair corpus has no 256 clusters). ``PYTHONPATH`` makes the
  bundled engine importable, as an install does.
- Preconditions the README states are met first: "after ``make demo``" is ``demo.py --quick`` with the
  tiny CLIP (it writes ``data/toy`` and ``output/demo``, where the full demo writes them).
- A block preceded by ``<!-- README test: not run (reason) -->`` is skipped; the comment gives the reason.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

from datasets import fixtures
from helpers_clip import REPO, entry_point_env

README = os.path.join(REPO, "README.md")
SKIP_MARK = re.compile(r"<!--\s*README test: not run \((?P<reason>[^)]+)\)\s*-->\s*$")
FENCE = re.compile(r"^```bash\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
SUBSTITUTED = ("DATA", "CLIP")
FIXTURE_DATASETS = ("ImageNet", "Caltech101", "OxfordPets", "ImageNetV2", "ImageNetSketch", "ImageNetA",
                    "ImageNetR")
CORPUS = "cc3m/train.tsv"
TINY_OPTS = ("INPUT.SIZE (32,32) OPTIM.MAX_EPOCH 1 DATALOADER.NUM_WORKERS 0 "
             "TRAINER.TPT.N_VIEWS 4 TRAINER.GRAM.ITERS_PER_EPOCH 1 TRAINER.GRAM.META_BATCH 1 "
             "TRAINER.GRAM.VAL_TASKS 1 TRAINER.GRAM.SUPPORT_SIZE 4 TRAINER.GRAM.QUERY_SIZE 4 "
             "TRAINER.GRAM.TTA_ITERS 1 TRAINER.GRAM.TTA_IMAGES 2")


def bash_blocks(text: str) -> list[tuple[str, str]]:
    """(body, skip reason or "") of every ```bash block, in order."""
    blocks = []
    for match in FENCE.finditer(text):
        preceding = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = SKIP_MARK.search(preceding)
        blocks.append((match.group("body"), mark.group("reason") if mark else ""))
    return blocks


def substitute(body: str, values: dict, opts: str, venv_bin: str) -> str:
    """The block with the values of ``export NAME=...`` replaced for NAME in ``values``, ``opts`` added to
    the value of ``export OPTS="..."``, and ``.venv/bin/`` pointing at ``venv_bin``."""
    def export(match):
        name = match.group("name")
        return f"{match.group('lead')}export {name}={values[name]}" if name in values else match.group(0)

    body = re.sub(r"^(?P<lead>\s*)export (?P<name>\w+)=(?!\")\S+", export, body, flags=re.MULTILINE)
    body = re.sub(r'^(?P<lead>\s*)export OPTS="(?P<value>[^"]*)"', lambda m: f'{m.group("lead")}export OPTS="'
                  f'{m.group("value")} {opts}"', body, flags=re.MULTILINE)
    return body.replace(".venv/bin/", venv_bin.rstrip("/") + "/")


def test_readme_blocks_are_found_and_marked():
    blocks = bash_blocks(open(README).read())
    skipped = [reason for _, reason in blocks if reason]
    assert len(blocks) >= 5 and len(skipped) <= 2, skipped  # keep what is not run to a minimum
    joined = "\n".join(body for body, _ in blocks)
    for name in SUBSTITUTED:
        assert re.search(rf"^export {name}=", joined, re.MULTILINE), f"no `export {name}=` in the README"
    block = ('export DATA=/path/to/datasets   # note\nexport CLIP=ViT-B/16\nexport OPTS="A $CLIP"\n'
             'OPTS="$OPTS B" bash x.sh\nsource .venv/bin/activate')
    assert substitute(block, {"DATA": "/toy", "CLIP": "/tiny.pt"}, "C 1", "/env/bin") == (
        'export DATA=/toy   # note\nexport CLIP=/tiny.pt\nexport OPTS="A $CLIP C 1"\nOPTS="$OPTS B" bash x.sh\n'
        'source /env/bin/activate')


def _copy_repository(destination: str) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for relative in filter(None, files.decode().split("\0")):
        source = os.path.join(REPO, relative)
        if os.path.isfile(source):
            target = os.path.join(destination, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(source, target)


def _miniature_data(root: str) -> str:
    for name in FIXTURE_DATASETS:
        fixtures.build_fixture(name, root, num_classes=4, images_per_class=4)
    corpus = fixtures.build_corpus_fixture(os.path.join(root, os.path.dirname(CORPUS)), 40, "tsv", n_corrupt=0,
                                           n_missing=0, seed=0)
    shutil.copy(corpus.source, os.path.join(root, CORPUS))
    return root


@pytest.mark.slow
def test_readme_bash_blocks_run_as_pasted(tmp_path, tiny_vit_checkpoint):
    repo = str(tmp_path / "repo")
    _copy_repository(repo)
    data = _miniature_data(str(tmp_path / "data"))
    env = entry_point_env(OPTS=f"MODEL.BACKBONE.NAME {tiny_vit_checkpoint} {TINY_OPTS}", SEEDS="1", K="8",
                          LEVELS="2,4")
    env.pop("OUTPUT", None)
    env["PYTHONPATH"] = os.pathsep.join([repo, os.path.join(repo, "third_party")])
    prepared = subprocess.run(
        [sys.executable, "demo.py", "--quick", "--root", "data/toy", "--output", "output/demo",
         "--backbone", tiny_vit_checkpoint], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert prepared.returncode == 0, prepared.stdout[-3000:] + prepared.stderr[-3000:]

    venv_bin = os.path.dirname(sys.executable)
    values = {"DATA": data, "CLIP": tiny_vit_checkpoint}
    script = ["set -euo pipefail"]
    for index, (body, reason) in enumerate(bash_blocks(open(README).read()), start=1):
        if not reason:
            script += [f"echo '### README block {index}'", substitute(body, values, TINY_OPTS, venv_bin)]
    completed = subprocess.run(["bash", "-c", "\n".join(script)], cwd=repo, env=env, capture_output=True,
                               text=True, timeout=1200)
    log = completed.stdout[-6000:] + "\n" + completed.stderr[-4000:]
    assert completed.returncode == 0, log
    for table in ("fewshot", "base2new", "cross_dataset", "dg", "tta"):
        assert os.path.isfile(os.path.join(repo, "output", "tables", f"{table}.md")), log
    assert os.path.isfile(os.path.join(repo, "output", "gram", "coop", "meta_checkpoint.pth"))
    assert os.path.isfile(os.path.join(repo, "output", "gram", "toy_vpt", "meta_checkpoint.pth"))
