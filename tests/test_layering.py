"""The house rules of the package, checked from the source: which module may import which.

Read with `ast` (nothing is imported, so the check takes a second and sees imports inside
functions too). Floors, lowest first (pipelines/README.md draws the map):
  0  components/: the stages, the container entrypoint, what the stages share with the rest
  1  pipelines/config.py, exit_codes.py, pipeline.py: the pipeline as the stages see it
  2  libraries: record/ (one model of what a run left), scheduling/ (the one DAG
     scheduler) and kubeflow/'s backend, object store and rules
  3  commands and what they alone use: run/, serving/, monitor/, report/, and kubeflow/'s
     compiler, submit and local run
  4  cli.py
A module never imports a higher floor, and never a name starting with `_` from another
folder (a sibling's internals). run/ and kubeflow/ (the two engines) import nothing of each
other: what both need sits a floor below, or is passed in by the cli. Tests (`*_test.py`,
conftest.py) are outside the house."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = {"components": "kubetfx.components", "pipelines": "kubetfx.pipelines"}

# Longest dotted prefix wins.
FLOORS = {
    "kubetfx.components": 0,
    "kubetfx.pipelines.config": 1,
    "kubetfx.pipelines.exit_codes": 1,
    "kubetfx.pipelines.pipeline": 1,
    "kubetfx.pipelines.record": 2,
    "kubetfx.pipelines.scheduling": 2,
    "kubetfx.pipelines.kubeflow": 2,
    "kubetfx.pipelines.kubeflow.compiler": 3,
    "kubetfx.pipelines.kubeflow.submit": 3,
    "kubetfx.pipelines.kubeflow.local_run": 3,
    "kubetfx.pipelines": 3,
    "kubetfx.pipelines.cli": 4,
}
TOP_LEVEL = {"__init__", "cli", "config", "exit_codes", "pipeline"}


def _modules():
    """(dotted name, path, is_package) of every shipped module (tests left out)."""
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.name.endswith("_test.py") or path.name == "conftest.py":
                continue
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            yield ".".join([package, *parts]), path, is_package


MODULES = list(_modules())
KNOWN = {name for name, _, _ in MODULES}


def _imports(name: str, path: Path, is_package: bool):
    """(imported module, imported name or None, line) for every kubetfx import in `path`,
    `from pkg import mod` resolved to the module `pkg.mod` when it is one."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("kubetfx."):
                    yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if not source.startswith("kubetfx."):
                continue
            for alias in node.names:
                if f"{source}.{alias.name}" in KNOWN:
                    yield f"{source}.{alias.name}", None, node.lineno
                else:
                    yield source, alias.name, node.lineno


def _floor(module: str) -> int:
    best = max((p for p in FLOORS if module == p or module.startswith(p + ".")), key=len)
    return FLOORS[best]


def _folder(module: str, is_package: bool = False) -> str:
    return module if is_package else module.rpartition(".")[0]


def test_the_floors_cover_every_module():
    assert MODULES and all(_floor(name) is not None for name, _, _ in MODULES)
    assert "kubetfx.pipelines.cli" in KNOWN and "kubetfx.components.container.entrypoint" in KNOWN


def test_components_never_import_pipelines():
    wrong = [f"{path.relative_to(REPO)}:{line} imports {source}"
             for name, path, is_package in MODULES if name.startswith("kubetfx.components")
             for source, _, line in _imports(name, path, is_package)
             if source.startswith("kubetfx.pipelines")]
    assert not wrong, "components/ must not import pipelines/ (move what both need below both):\n" + "\n".join(wrong)


def test_no_floor_imports_a_higher_one():
    wrong = sorted({f"{path.relative_to(REPO)}:{line} (floor {_floor(name)}) imports {source} (floor {_floor(source)})"
             for name, path, is_package in MODULES
             for source, _, line in _imports(name, path, is_package)
             if _floor(source) > _floor(name)})
    assert not wrong, "imports back up:\n" + "\n".join(wrong)


def test_no_module_imports_a_private_name_of_another_folder():
    wrong = []
    for name, path, is_package in MODULES:
        for source, imported, line in _imports(name, path, is_package):
            private = (imported or "").startswith("_") and not (imported or "").startswith("__")
            private_module = any(part.startswith("_") and not part.startswith("__") for part in source.split("."))
            source_folder = _folder(source, _is_package(source))
            if (private or private_module) and source_folder != _folder(name, is_package):
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {source}:{imported}")
    assert not wrong, "a sibling's internals imported (go through its public functions):\n" + "\n".join(wrong)


ENGINES = ("kubetfx.pipelines.run", "kubetfx.pipelines.kubeflow")


def test_run_and_kubeflow_never_import_each_other():
    def engine(module: str):
        return next((e for e in ENGINES if module == e or module.startswith(e + ".")), None)
    wrong = sorted({f"{path.relative_to(REPO)}:{line} imports {source}"
                    for name, path, is_package in MODULES if engine(name)
                    for source, _, line in _imports(name, path, is_package)
                    if engine(source) and engine(source) != engine(name)})
    assert not wrong, ("run/ and kubeflow/ import nothing of each other (move what both need a floor "
                       "down, or let the cli pass it in):\n" + "\n".join(wrong))


UPSTREAM = ("tensorflow", "tensorflow_data_validation", "tensorflow_model_analysis", "tensorflow_transform", "tfx",
            "tfx_bsl")
SEAMS = "kubetfx.components.upstream_seams"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _upstream_private_uses(path: Path):
    """(line, what) for each private name of an upstream library the source reaches: an
    import of one, or an attribute starting with `_` of a name bound to an upstream import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            source = getattr(node, "module", None) or ""
            for alias in node.names:
                full = alias.name if isinstance(node, ast.Import) else f"{source}.{alias.name}"
                if full.split(".")[0] in UPSTREAM:
                    bound.add(alias.asname or alias.name.split(".")[0])
                    if any(_private(part) for part in full.split(".")):
                        yield node.lineno, full
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name) \
                and node.value.id in bound:
            yield node.lineno, f"{node.value.id}.{node.attr}"


def test_private_upstream_names_are_reached_only_through_the_seams():
    wrong = [f"{path.relative_to(REPO)}:{line} uses {what}"
             for name, path, _ in MODULES if name != SEAMS
             for line, what in _upstream_private_uses(path)]
    assert not wrong, ("a private name of TensorFlow/TFDV/TFMA/TFT/TFX outside components/upstream_seams.py "
                       "(resolve it there, with a fallback):\n" + "\n".join(wrong))


def test_the_upstream_check_sees_a_private_use(tmp_path):
    source = tmp_path / "stage.py"
    source.write_text("from tensorflow.python.lib.io import _pywrap_record_io\n"
                      "from tensorflow_data_validation.statistics import stats_impl\n"
                      "stats_impl._split_generator_types\n")
    assert sorted(_upstream_private_uses(source)) == [
        (1, "tensorflow.python.lib.io._pywrap_record_io"), (3, "stats_impl._split_generator_types")]


def test_only_the_entry_modules_stay_at_the_top_of_pipelines():
    top = sorted(p.stem for p in (REPO / "pipelines").glob("*.py")
                 if not p.name.endswith("_test.py") and p.name != "conftest.py")
    assert set(top) <= TOP_LEVEL, f"group into a folder: {sorted(set(top) - TOP_LEVEL)}"


def _is_package(module: str) -> bool:
    return any(name == module and is_package for name, _, is_package in MODULES)


def test_the_check_sees_a_back_import(tmp_path):
    """The checker itself: an import inside a function, relative or absolute, is found."""
    source = tmp_path / "gate.py"
    source.write_text("def f():\n    from kubetfx.pipelines import summary\n    from ..x import _y\n")
    found = list(_imports("kubetfx.components.a.gate", source, False))
    assert ("kubetfx.pipelines.summary", None, 2) in found or ("kubetfx.pipelines", "summary", 2) in found
    assert ("kubetfx.components.x", "_y", 3) in found
