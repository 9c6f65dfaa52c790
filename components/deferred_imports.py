"""Upstream packages whose `__init__` imports far more than kubetfx uses, loaded by their
submodules instead. `tfx.components/__init__` imports all sixteen stock components, so any
`tfx.components.<stage>` import pulls in the BulkInferrer (Beam's BigQuery, Mongo and S3
IOs), the Tuner (KerasTuner and Keras 3) and the InfraValidator's Kubernetes client;
`tensorflow_model_analysis/__init__`, which `tfx.types.standard_component_specs` reaches for
one proto type (`tfma.sdk`), imports every evaluator and metric (NLTK for ROUGE). A run
that never evaluates (a container of another stage, `kubetfx monitor`) paid for all of it.

`defer(name)` registers the package without running its `__init__`: its submodules import
as usual (the package's `__path__` is the real one); a name the `__init__` only re-exports
(`from tfx.components import ImportExampleGen`) imports the one module that defines it; the
first read of any other name runs the real `__init__` in place, so `import tensorflow_model_analysis as tfma;
tfma.EvalConfig` still works, later. Nothing changes once the package is imported, so
`install()` is a no-op when something imported the package first.

`MODULES` are single modules a stage imports for one branch kubetfx never takes: TFX's
InfraValidator executor imports its Kubernetes runner (and with it the Kubernetes client,
0.35 s of the pipeline's build under `-X importtime`) for a serving spec kubetfx never
writes (its executor starts kubetfx's model server). They are registered with
importlib's LazyLoader: the module runs at the first read of any of its names."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import threading

# The packages deferred (tests/test_startup_imports.py checks what each saves a command).
PACKAGES = ("tfx.components", "tensorflow_model_analysis")
MODULES = ("tfx.components.infra_validator.model_server_runners.kubernetes_runner",)

_lock = threading.RLock()  # two stages' threads may read the first name at once


def install() -> None:
    for name in PACKAGES:
        defer(name)
    for name in MODULES:
        defer_module(name)


def defer_module(name: str) -> None:
    """Registers module `name` to run at the first read of one of its names (no-op when it
    is imported or not installed)."""
    with _lock:
        if name in sys.modules:
            return
        parent, _, child = name.rpartition(".")
        if parent:
            importlib.import_module(parent)  # the parent's own imports are not deferred
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return
        spec.loader = importlib.util.LazyLoader(spec.loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)  # LazyLoader: only arms the first-read hook
        if parent:
            # `from parent import child` then finds the attribute; without it the import
            # system would read the module's __spec__, and any read runs the module.
            setattr(sys.modules[parent], child, module)


def defer(name: str) -> None:
    """Registers package `name` with its `__init__` not yet run (no-op when it is imported)."""
    with _lock:
        if name in sys.modules:
            return
        parent, _, child = name.rpartition(".")
        if parent:
            importlib.import_module(parent)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.submodule_search_locations is None:
            return  # not installed, or not a package: nothing to defer
        module = importlib.util.module_from_spec(spec)
        module.__getattr__ = _first_read(name, spec, module, _reexports(spec.origin))
        sys.modules[name] = module
        if parent:
            setattr(sys.modules[parent], child, module)


def _reexports(init_path: str) -> dict:
    """{name: module} when the `__init__` only re-exports names (`from m import Name`, a
    docstring, `__all__`), as tfx.components' does; else {} (any name runs the `__init__`)."""
    try:
        with open(init_path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return {}
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.update({alias.asname or alias.name: (node.module, alias.name) for alias in node.names})
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                  or isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]):
            return {}
    return found


def _first_read(name, spec, module, reexports: dict):
    ran = []

    def __getattr__(attr: str):
        if attr in reexports and not ran:  # only the module that defines it
            source, original = reexports[attr]
            value = getattr(importlib.import_module(source), original)
            setattr(module, attr, value)
            return value
        # `from package import submodule` reads the attribute before importing the submodule.
        if not attr.startswith("__") and importlib.util.find_spec(f"{name}.{attr}") is not None:
            return importlib.import_module(f"{name}.{attr}")
        with _lock:
            if not ran:
                ran.append(True)
                spec.loader.exec_module(module)  # the real __init__, in the registered module
                if attr in module.__dict__:
                    return module.__dict__[attr]
        raise AttributeError(f"module {name!r} has no attribute {attr!r}")

    return __getattr__
