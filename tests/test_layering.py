"""The layering the README states: every module imports only from its own layer or the layers below it,
and ``import trainers`` (what every CoOp-style run loads) loads neither FAISS nor the clustering stage."""
import ast
import json
import os
import subprocess
import sys

from helpers_clip import REPO, entry_point_env

# Bottom to top; a module belongs to the layer of the longest prefix that names it.
LAYERS = [
    ("engine", ["dassl"]),
    ("file helpers", ["fileio"]),
    ("process groups (torch.distributed)", ["parallel"]),
    ("CLIP machinery and prompt modules", ["trainers.backbone", "trainers.dassl_compat"]),
    ("test support", ["testing"]),
    ("baseline trainers", ["trainers.zsclip", "trainers.coop", "trainers.cocoop", "trainers.kgcoop", "trainers.vpt",
                           "trainers.vl_prompts", "trainers.maple", "trainers.prometar", "trainers.tpt",
                           "trainers.config"]),
    ("clustering stage", ["clustering"]),
    ("datasets", ["datasets"]),
    ("GRAM", ["trainers.gram", "trainers.gram_trainers", "trainers"]),
    ("tools", ["tools"]),
    ("entry points, benchmarks and tests", ["train", "cluster", "meta_train", "run_protocol", "parse_test_res",
                                            "demo", "make_toy_world", "setup", "conftest", "bench", "tests"]),
]
PROJECT = {prefix.split(".")[0] for _, prefixes in LAYERS for prefix in prefixes}
SKIP = {"third_party", "output", ".venv", ".git"}


def layer_of(module: str) -> int:
    best, rank = -1, None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    return rank


def project_sources():
    """(module name, path) of every Python file of the toolbox outside the bundled engine."""
    for folder, subfolders, files in os.walk(REPO):
        subfolders[:] = [name for name in subfolders if name not in SKIP and not name.startswith(".")]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, REPO)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                yield ".".join(parts), path


def imported_modules(module: str, path: str):
    """Every project module ``path`` imports, at the top or inside a function (lazy imports count)."""
    tree = ast.parse(open(path).read(), filename=path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PROJECT:
                yield node.lineno, name


def test_every_module_imports_only_its_layer_or_below():
    upward = []
    sources = list(project_sources())
    assert len(sources) > 100
    for module, path in sources:
        own = layer_of(module)
        assert own is not None, f"{os.path.relpath(path, REPO)} is in no layer of tests/test_layering.py"
        for line, target in imported_modules(module, path):
            if layer_of(target) > own:
                upward.append(f"{os.path.relpath(path, REPO)}:{line} ({LAYERS[own][0]}) imports {target} "
                              f"({LAYERS[layer_of(target)][0]})")
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_test_support_is_imported_only_by_tests_benchmarks_and_the_toy_world():
    allowed = ("tests", "bench", "testing", "conftest", "datasets.toy_world")
    users = [f"{module} imports {target}" for module, path in project_sources() if not module.startswith(allowed)
             for _, target in imported_modules(module, path) if target.split(".")[0] == "testing"]
    assert not users


def test_a_layer_violation_is_reported(tmp_path):
    """The checker itself: a baseline trainer importing GRAM is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from trainers.gram.regulator import build_regulator\n")
    targets = [target for _, target in imported_modules("trainers.coop", str(bad))]
    assert targets == ["trainers.gram.regulator"]
    assert layer_of(targets[0]) > layer_of("trainers.coop")


def test_import_trainers_loads_no_faiss_and_no_clustering_module():
    code = "import json, sys; import trainers; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env=entry_point_env())
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert "trainers.gram_trainers" in loaded and "trainers.coop" in loaded  # it did register the trainers
    offending = [name for name in loaded if name.split(".")[0] in ("faiss", "clustering")]
    assert not offending


def test_test_modules_take_the_session_fixtures_from_conftest():
    """Importing a fixture into a test module would give it its own copy, set up again for that module."""
    conftest = ast.parse(open(os.path.join(REPO, "tests", "conftest.py")).read())
    fixtures = {node.name for node in conftest.body if isinstance(node, ast.FunctionDef)}
    assert {"tiny_vit_checkpoint", "dataset_root", "gram_split"} <= fixtures
    imported = [f"{module} imports {alias.name}" for module, path in project_sources() if module.startswith("tests.")
                for node in ast.walk(ast.parse(open(path).read())) if isinstance(node, ast.ImportFrom)
                for alias in node.names if alias.name in fixtures]
    assert not imported
