"""Files a user downloads or is handed (checkpoints, meta checkpoints, configs, dataset caches) run no code.

Each crafted file would ``touch`` a marker file when unpickled or imported; every test first shows that the
plain loader does run it (the file is a real attack), then that the toolbox's loader refuses it in one line
and the marker never appears. The explicit opt-ins still load trusted old files, with a warning.
"""
import os
import pickle

import pytest
import torch

from dassl.data.datasets import Datum

MARKER_COMMAND = "touch {}"


class Payload:
    """Unpickling it runs ``touch <marker>``."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (MARKER_COMMAND.format(self.marker),)


@pytest.fixture
def marker(tmp_path):
    return str(tmp_path / "marker")


def assert_attack_is_real(load, marker):
    """The plain loader runs the file's code: remove the marker it leaves."""
    load()
    assert os.path.exists(marker)
    os.remove(marker)


def one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text, text
    return text


def refused_unless_opted_in(path: str, load, error_type, marker: str, warning: str) -> None:
    """``load(path)`` refuses the crafted file in one line naming it and the opt-in, running none of its
    code; ``load(path, allow_pickle=True)`` (the explicit opt-in, trusted files only) warns and unpickles it."""
    assert_attack_is_real(lambda: torch.load(path, weights_only=False), marker)
    with pytest.raises(error_type) as error:
        load(path)
    assert path in one_line(error) and "TRAIN.ALLOW_PICKLED_CHECKPOINTS" in str(error.value)
    assert not os.path.exists(marker)
    with pytest.warns(UserWarning, match=warning):
        load(path, allow_pickle=True)
    assert os.path.exists(marker)


@pytest.mark.scenario("train.py", "bad input")
def test_engine_checkpoint_with_code_is_refused_without_the_opt_in(tmp_path, marker):
    from dassl.utils import load_checkpoint

    path = str(tmp_path / "model.pth.tar-1")
    torch.save({"state_dict": {}, "epoch": 1, "optimizer": Payload(marker)}, path)
    refused_unless_opted_in(path, load_checkpoint, RuntimeError, marker, warning="unpickling in full")


@pytest.mark.scenario("train.py", "bad input")
def test_meta_checkpoint_with_code_is_refused_without_the_opt_in(tmp_path, marker):
    from trainers.gram.meta_checkpoint import FORMAT, MetaCheckpointError, load_meta_checkpoint

    path = str(tmp_path / "meta_checkpoint.pth")
    torch.save({"format": FORMAT, "method": "CoOp", "prompt_init": {}, "regulator_config": Payload(marker),
                "regulator_state": {}, "clip_fingerprint": "", "backbone": "", "settings": {}, "test_time": None}, path)
    refused_unless_opted_in(path, load_meta_checkpoint, MetaCheckpointError, marker, warning="in full")


def test_meta_checkpoints_are_written_in_a_weights_only_form(tmp_path):
    from trainers.gram.meta_checkpoint import MetaCheckpoint, load_meta_checkpoint, save_meta_checkpoint
    from trainers.gram.regulator import build_regulator

    regulator = build_regulator("lowrank", {"ctx": (4, 8)}, rank=2, gate_hidden=2)
    checkpoint = MetaCheckpoint("CoOp", {"ctx": torch.randn(4, 8)}, regulator.config(), regulator.state_dict(),
                                "abc", "tiny.pt", {"config": "x: 1"}, test_time={"prototypes": [torch.ones(2, 3)],
                                                                                 "temperature": 0.1})
    path = str(tmp_path / "meta.pth")
    save_meta_checkpoint(checkpoint, path)
    torch.load(path, weights_only=True)  # raises if anything in it needs full unpickling
    loaded = load_meta_checkpoint(path)
    torch.testing.assert_close(loaded.prompt_init["ctx"], checkpoint.prompt_init["ctx"])
    assert loaded.test_time["temperature"] == 0.1


@pytest.mark.parametrize("program", [pytest.param(program, marks=pytest.mark.scenario(program, "bad input"))
                                     for program in ("train.py", "meta_train.py")])
def test_python_config_files_are_not_executed(tmp_path, marker, program):
    from tools.cli import UsageError, default_cfg, merge_file

    path = str(tmp_path / "evil.py")
    with open(path, "w") as handle:
        handle.write(f"import os\nos.system({MARKER_COMMAND.format(marker)!r})\nfrom yacs.config import CfgNode\n"
                     "cfg = CfgNode()\n")
    assert_attack_is_real(lambda: default_cfg().merge_from_file(path), marker)
    with pytest.raises(UsageError) as error:
        merge_file(default_cfg(), path, "trainer config file")
    assert path in one_line(error) and "YAML" in str(error.value)
    assert not os.path.exists(marker)


def _datum_lists(tmp_path):
    image = tmp_path / "a.jpg"
    image.write_bytes(b"x")
    return [Datum(impath=str(image), label=0, classname="a")], [Datum(impath=str(image), label=0, classname="a")]


@pytest.mark.scenario("train.py", "bad input")
def test_fewshot_cache_with_code_is_refused(tmp_path, marker):
    from datasets import base

    train, val = _datum_lists(tmp_path)
    path = str(tmp_path / "shot_1-seed_1.pkl")
    with open(path, "wb") as handle:
        pickle.dump({"train": train, "val": [Payload(marker)]}, handle)
    assert_attack_is_real(lambda: pickle.load(open(path, "rb")), marker)
    with pytest.raises(ValueError) as error:
        base._read_fewshot_cache(path, train, val)
    assert path in one_line(error) and "posix.system" in str(error.value)
    assert not os.path.exists(marker)


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_coop_format_fewshot_caches_still_load(tmp_path, protocol):
    from datasets import base

    train, val = _datum_lists(tmp_path)
    path = str(tmp_path / "shot_1-seed_1.pkl")
    with open(path, "wb") as handle:
        pickle.dump({"train": train, "val": val}, handle, protocol=protocol)
    cached_train, cached_val = base._read_fewshot_cache(path, train, val)
    assert [(d.impath, d.label, d.classname) for d in cached_train] == [(d.impath, d.label, d.classname) for d in train]


@pytest.mark.scenario("train.py", "bad input")
def test_imagenet_preprocessed_pickle_with_code_is_refused(tmp_path, marker):
    from datasets.imagenet import ImageNet

    train, _ = _datum_lists(tmp_path)
    dataset = object.__new__(ImageNet)
    dataset.preprocessed = str(tmp_path / "preprocessed.pkl")
    with open(dataset.preprocessed, "wb") as handle:
        pickle.dump({"train": train, "test": Payload(marker)}, handle)
    assert_attack_is_real(lambda: pickle.load(open(dataset.preprocessed, "rb")), marker)
    with pytest.raises(ValueError) as error:
        dataset.read_preprocessed()
    assert dataset.preprocessed in one_line(error)
    assert not os.path.exists(marker)
    dataset.write_preprocessed({"train": train, "test": train})
    assert dataset.read_preprocessed()["test"][0].impath == train[0].impath
