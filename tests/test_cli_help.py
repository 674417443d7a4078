"""Every entry point's ``--help``: it states each option's default, prints no ``pkg_resources is deprecated``
warning (openai-clip's, silenced where ``clip`` is imported, and only that one), and the entry points share
flag names for the same thing."""
import argparse
import os
import re
import subprocess
import sys

import pytest

import cluster
import demo
import make_toy_world
import meta_train
import parse_test_res
import run_protocol
import train
from datasets import fixtures
from helpers_clip import REPO, entry_point_env
from tools.help_format import DefaultsHelpFormatter, has_default

PARSERS = {
    "train.py": train.build_parser,
    "meta_train.py": meta_train.build_parser,
    "cluster.py": cluster.build_parser,
    "run_protocol.py": run_protocol.build_parser,
    "parse_test_res.py": parse_test_res.build_parser,
    "demo.py": demo.build_parser,
    "make_toy_world.py": make_toy_world.build_parser,
    "datasets/fixtures.py": fixtures.build_parser,
}
PKG_RESOURCES_WARNING = "pkg_resources is deprecated"

# The same thing has the same flag in every entry point that takes it (old spellings stay accepted as aliases).
SHARED_FLAGS = {
    "--root": ("train.py", "meta_train.py", "run_protocol.py", "demo.py", "make_toy_world.py", "datasets/fixtures.py"),
    "--backbone": ("train.py", "meta_train.py", "cluster.py", "demo.py"),
    "--output-dir": ("train.py", "meta_train.py", "cluster.py"),
    "--config-file": ("train.py", "meta_train.py"),
    "--seed": ("train.py", "meta_train.py", "cluster.py", "make_toy_world.py", "datasets/fixtures.py"),
    "--corpus": ("meta_train.py", "cluster.py"),
    "--jobs": ("run_protocol.py", "demo.py"),
    "--output": ("run_protocol.py", "demo.py"),
}
ALIASES = {"cluster.py": {"--clip": "--backbone", "--out": "--output-dir"}, "demo.py": {"--clip": "--backbone"},
           "datasets/fixtures.py": {"--out": "--root"}}


def option_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    return parser._get_formatter()._get_help_string(action)  # what --help prints for the action


@pytest.mark.parametrize("program", sorted(PARSERS))
def test_every_option_has_help_that_states_its_default(program):
    parser = PARSERS[program]()
    # the toolbox's formatter; the test fixtures (datasets layer, below tools/) use argparse's own
    assert issubclass(parser.formatter_class, argparse.ArgumentDefaultsHelpFormatter)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{program} {action.option_strings or action.dest}: no help text"
        if has_default(action.default) and action.nargs != argparse.REMAINDER:
            assert "default" in option_help(parser, action).lower(), (program, action.option_strings)


def test_run_protocol_help_names_the_defaults_the_issue_asked_for():
    text = run_protocol.build_parser().format_help()
    flat = " ".join(text.split())
    for expected in ("(default: 1 2 3)", "(default: auto)", "context tokens (default: the config's N_CTX, else 16)",
                     "default: 1 2 4 8 16 for fewshot, else 16"):
        assert expected in flat, expected


def test_defaults_formatter_leaves_out_defaults_that_say_nothing():
    parser = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--k", type=int, default=0, help="clusters")
    parser.add_argument("--name", default="", help="a name")
    parser.add_argument("--flag", action="store_true", help="a flag")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2], help="seeds")
    parser.add_argument("--rate", default="5%", help="a rate")
    flat = " ".join(parser.format_help().split())
    assert "clusters (default: 0)" in flat and "seeds (default: 1 2)" in flat and "a rate (default: 5%)" in flat
    assert "a name (default" not in flat and "a flag (default" not in flat


@pytest.mark.parametrize("flag", sorted(SHARED_FLAGS))
def test_entry_points_share_flag_names(flag):
    for program in SHARED_FLAGS[flag]:
        options = {option for action in PARSERS[program]()._actions for option in action.option_strings}
        assert flag in options, f"{program} lacks {flag}"


def test_old_flag_spellings_stay_aliases_of_the_shared_ones():
    for program, aliases in ALIASES.items():
        parser = PARSERS[program]()
        for old, new in aliases.items():
            action = next(a for a in parser._actions if new in a.option_strings)
            assert old in action.option_strings and action.option_strings[0] == new, (program, old)


def test_every_argument_parser_of_the_repository_states_defaults():
    """Benchmarks and helpers too: every ``ArgumentParser(...)`` call passes a defaults formatter."""
    calls = []
    for folder in ("", "bench", "datasets", "tools"):
        for name in sorted(os.listdir(os.path.join(REPO, folder))):
            if name.endswith(".py"):
                source = open(os.path.join(REPO, folder, name)).read()
                calls += [(name, call) for call in re.findall(r"ArgumentParser\((.*?)\)\n", source, re.DOTALL)]
    assert len(calls) >= len(PARSERS) + 8
    assert all("formatter_class=" in call and "HelpFormatter" in call for _, call in calls), calls


@pytest.mark.slow
def test_every_help_prints_no_pkg_resources_warning():
    """``--help`` of every entry point, each in its own process (the warning comes once per process)."""
    commands = {program: [sys.executable, *(["-m", "datasets.fixtures"] if program == "datasets/fixtures.py"
                                           else [program]), "--help"] for program in PARSERS}
    processes = {program: subprocess.Popen(command, cwd=REPO, env=entry_point_env(), stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
                 for program, command in commands.items()}
    for program, process in processes.items():
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, (program, err)
        assert "(default:" in out, program
        assert PKG_RESOURCES_WARNING not in out + err, (program, err)


def test_importing_clip_through_the_toolbox_silences_only_that_warning():
    """The control (a bare ``import clip``) shows the warning; through the toolbox it is gone, while another
    warning from clip's module and the same text from another module are still shown."""
    control = subprocess.run([sys.executable, "-c", "import clip"], env=entry_point_env(), capture_output=True,
                             text=True, timeout=120)
    if PKG_RESOURCES_WARNING not in control.stderr:
        pytest.skip("this setuptools does not warn on `import pkg_resources`")
    script = (
        "import sys, warnings\n"
        "import trainers.backbone.clip_loader\n"
        "assert 'clip.clip' in sys.modules\n"
        "warnings.warn_explicit('pkg_resources is deprecated as an API (elsewhere)', UserWarning, 'other.py', 1,"
        " module='other')\n"
        "warnings.warn_explicit('another clip warning', UserWarning, 'clip/clip.py', 2, module='clip.clip')\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=entry_point_env(),
                               capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr
    assert "another clip warning" in completed.stderr and "(elsewhere)" in completed.stderr
    assert completed.stderr.count(PKG_RESOURCES_WARNING) == 1, completed.stderr  # only the one from elsewhere
