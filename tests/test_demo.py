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


def test_demo_entry_points_make_waiting_openmp_threads_sleep_before_torch_loads():
    env = {k: v for k, v in entry_point_env().items() if k != "OMP_WAIT_POLICY"}
    probe = ("import os, sys; import {module}; "
             "print(os.environ.get('OMP_WAIT_POLICY'), '{module}' == 'demo' and 'torch' in sys.modules)")
    for module in ("demo", "make_toy_world"):
        result = subprocess.run([sys.executable, "-c", probe.format(module=module)], capture_output=True, text=True,
                                env=env, cwd=REPO, timeout=300)
        assert result.stdout.split() == ["PASSIVE", "False"], result.stderr[-2000:]
    chosen = subprocess.run([sys.executable, "-c", probe.format(module="demo")], capture_output=True, text=True,
                            env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, cwd=REPO, timeout=300)
    assert chosen.stdout.split() == ["ACTIVE", "False"]
