"""Faults and bad input, per entry point: how many were tried, how many the toolbox survived or answered.

    python bench/bench_faults.py [pytest options, e.g. -k cluster]

Runs the fault and bad-input tests (every test marked ``@pytest.mark.scenario(program, kind)``) and prints the
README's table. A "fault" (a process killed mid-write, a full disk, a job that dies, a truncated shard)
counts as survived when its test passes: the run resumes or is rerun and ends with the results of an
uninterrupted one (or uses the readable data and says what was lost). A "bad input" counts as answered
when its test passes: one line naming the file and what was expected, and no code from the file runs.
"""
import os
import sys
from collections import defaultdict

import pytest
from tabulate import tabulate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_FILES = ("test_run_faults.py", "test_corpus_faults.py", "test_bad_input.py", "test_run_folder.py",
              "test_untrusted_files.py", "test_protocol_faults.py")
PROGRAMS = ("train.py", "meta_train.py", "cluster.py", "run_protocol.py")


class ScenarioCounter:
    """A pytest plugin counting the outcome of every scenario-marked test by program and kind."""

    def __init__(self):
        self.scenarios = {}
        self.counts = defaultdict(lambda: [0, 0])  # (program, kind) -> [tried, passed]

    def pytest_collection_modifyitems(self, items):
        for item in items:
            marker = item.get_closest_marker("scenario")
            if marker is not None:
                self.scenarios[item.nodeid] = tuple(marker.args)

    def pytest_runtest_logreport(self, report):
        scenario = self.scenarios.get(report.nodeid)
        if scenario is None or (report.when != "call" and report.passed):
            return
        if report.when == "call" or report.failed:  # a setup error counts as a failed scenario
            counts = self.counts[scenario]
            counts[0] += 1
            counts[1] += int(report.passed)
            self.scenarios.pop(report.nodeid)

    def table(self) -> str:
        rows = []
        for program in PROGRAMS:
            faults, survived = self.counts[(program, "fault")]
            bad, answered = self.counts[(program, "bad input")]
            rows.append([program, faults, survived, bad, answered])
        return tabulate(rows, headers=["entry point", "faults tried", "survived, identical results",
                                       "bad inputs tried", "answered in one line"], tablefmt="github")


def main() -> int:
    counter = ScenarioCounter()
    os.chdir(REPO)
    files = [os.path.join("tests", name) for name in TEST_FILES]
    code = pytest.main(["-q", "-p", "no:cacheprovider", *files, *sys.argv[1:]], plugins=[counter])
    print()
    print(counter.table())
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
