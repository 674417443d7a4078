"""The miniature demo runs end to end (world -> clusters -> meta-training -> base-to-new) and writes the table."""
import os
import subprocess
import sys

import pytest

from helpers_clip import REPO, entry_point_env

pytestmark = pytest.mark.slow  # end to end: the real entry points


def test_quick_demo_produces_the_base_to_new_table(tiny_vit_checkpoint, tmp_path):
    env = entry_point_env()
    output = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "demo.py"), "--quick", "--root", str(tmp_path / "toy"),
         "--output", str(output), "--clip", tiny_vit_checkpoint],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = (output / "tables" / "base2new.md").read_text()
    for method in ("ZeroshotCLIP", "CoOp", "CoOp_GRAM"):
        assert f"| {method}" in table
    assert (output / "gram" / "coop" / "meta_checkpoint.pth").is_file()
    assert "summary" in result.stdout
