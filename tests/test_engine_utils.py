"""dassl.utils: log tee, atomic JSON, image reading and meters."""
import os
import sys

import pytest
from PIL import Image

from dassl.utils import AverageMeter, MetricMeter, read_image, read_json, setup_logger, write_json


def test_setup_logger_tees_stdout_and_never_overwrites(tmp_path, capsys):
    original = sys.stdout
    try:
        setup_logger(str(tmp_path))
        print("first run")
        sys.stdout.flush()
        assert (tmp_path / "log.txt").read_text() == "first run\n"
        setup_logger(str(tmp_path))  # a second run in the same folder keeps the first log
        print("second run")
        sys.stdout.flush()
    finally:
        if sys.stdout is not original:
            sys.stdout.close()  # closes the log file, not the console
            sys.stdout = original
    assert (tmp_path / "log.txt").read_text() == "first run\n"
    others = [name for name in os.listdir(tmp_path) if name.startswith("log.txt-")]
    assert len(others) == 1 and (tmp_path / others[0]).read_text() == "second run\n"
    assert "first run\nsecond run\n" in capsys.readouterr().out


def test_write_json_is_atomic_and_read_json_names_bad_files(tmp_path):
    path = tmp_path / "sub" / "split.json"
    write_json({"train": [["a.jpg", 0, "cat"]]}, str(path))
    assert read_json(str(path)) == {"train": [["a.jpg", 0, "cat"]]}
    assert os.listdir(path.parent) == ["split.json"]
    path.write_text("{not json")
    with pytest.raises(ValueError, match="split.json is not valid JSON"):
        read_json(str(path))


def test_read_image_returns_rgb_and_names_missing_or_corrupt_files(tmp_path):
    Image.new("L", (5, 4)).save(tmp_path / "gray.png")
    image = read_image(str(tmp_path / "gray.png"))
    assert image.mode == "RGB" and image.size == (5, 4)
    with pytest.raises(FileNotFoundError, match="No image file at .*missing.png"):
        read_image(str(tmp_path / "missing.png"))
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(OSError, match="Cannot read image .*broken.jpg"):
        read_image(str(tmp_path / "broken.jpg"))


def test_meters_average_and_print_like_dassl():
    meter = AverageMeter()
    meter.update(1.0, n=3)
    meter.update(5.0)
    assert (meter.val, meter.avg) == (5.0, 2.0)
    metrics = MetricMeter()
    metrics.update({"loss": 2.0, "acc": 50.0})
    metrics.update({"loss": 1.0, "acc": 100.0})
    assert str(metrics) == "loss 1.0000 (1.5000) acc 100.0000 (75.0000)"
    with pytest.raises(TypeError):
        metrics.update([1.0])
