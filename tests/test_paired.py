"""Paired differences over seeds with a Student t interval (tools/paired.py)."""
import math

import pytest

from tools.paired import keep_unless_beaten, paired_difference


def test_interval_is_the_t_interval_of_the_per_seed_differences():
    difference = paired_difference({1: 51.0, 2: 62.0, 3: 73.0}, {1: 50.0, 2: 60.0, 3: 70.0})
    half_width = 4.302652729911275 * 1.0 / math.sqrt(3)  # t_{0.975, 2} * std(ddof=1) / sqrt(n), d = 1, 2, 3
    assert difference.mean == pytest.approx(2.0) and difference.n == 3
    assert (difference.low, difference.high) == pytest.approx((2.0 - half_width, 2.0 + half_width))
    assert not difference.excludes_zero and str(difference) == "+2.00 [-0.48, +4.48]"


def test_only_shared_seeds_are_paired_and_a_constant_gain_excludes_zero():
    difference = paired_difference({1: 3.0, 2: 4.0, 3: 5.0, 9: 100.0}, {1: 1.0, 2: 2.0, 3: 3.0})
    assert difference.mean == pytest.approx(2.0) and difference.n == 3
    assert difference.low == pytest.approx(2.0) and difference.excludes_zero


def test_fewer_than_two_paired_seeds_is_refused():
    with pytest.raises(ValueError, match="needs >= 2 seeds"):
        paired_difference({1: 1.0, 2: 2.0}, {2: 1.0, 3: 0.0})


def test_the_best_candidate_replaces_the_current_one_only_on_a_supported_advantage():
    current = {1: 50.0, 2: 60.0, 3: 70.0}
    steady = {seed: value + 2.0 for seed, value in current.items()}  # +2 on every seed: the interval excludes 0
    noisy = {1: 58.0, 2: 55.0, 3: 75.0}  # a higher mean (+2.67), but the seeds disagree
    assert keep_unless_beaten({"current": current, "steady": steady}, "current")[:2] == ("steady", "steady")
    chosen, best, advantage = keep_unless_beaten({"current": current, "noisy": noisy}, "current")
    assert (chosen, best) == ("current", "noisy") and not advantage.excludes_zero
    assert keep_unless_beaten({"current": steady, "other": current}, "current")[0] == "current"
