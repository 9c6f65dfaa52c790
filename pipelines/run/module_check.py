"""A `--module-file` checked before any stage starts (issue 23): a syntax error, an import
that cannot resolve, or a missing or misshapen `preprocessing_fn`/`run_fn`/`tuner_fn` is one
line naming the user's file and line (ConfigError, exit 2), not a Transform failure 17 s
into the run showing TFX's temporary copy of the file.

Two steps. First the source alone (parse, the modules its top-level imports name, the
functions TFX will call and how many arguments they take): no user code runs, no
TensorFlow is imported, the answer comes in well under 2 s. Then the module is imported
for real in a child process (bounded by IMPORT_TIMEOUT_S, its output captured): an error
its top-level code raises is named with the user's line, and the functions' signatures
are checked on the objects themselves. A child, because the import brings TensorFlow's
start-up noise and whatever the module's top level does, neither of which belongs in the
process that runs the pipeline and prints its progress."""
from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

from kubetfx.pipelines.config import ConfigError

IMPORT_TIMEOUT_S = 120  # TensorFlow's import is most of it (about 5 s here)
MAX_SOURCE_BYTES = 10 << 20  # a module file is code, not data

# What TFX calls, and with what: the number of positional arguments TFX passes; a named
# argument it may pass when the function takes it (TFX 1.16 transform executor:
# custom_config goes to a preprocessing_fn that names it).
CALLS = {
    "preprocessing_fn": ("inputs", ("custom_config",)),
    "run_fn": ("fn_args", ()),
    "tuner_fn": ("fn_args", ()),
}


def required_functions(config) -> list:
    """The functions the pipeline will look up in the module file."""
    return ["preprocessing_fn", "run_fn"] + (["tuner_fn"] if getattr(config, "tune", False) else [])


def check_source(module_file: str, functions: list) -> None:
    """The first step (no user code runs): raises ConfigError, one line
    `--module-file PATH:LINE: what`, for a module TFX could not load or call."""
    path = Path(module_file)
    tree = _parse(path)
    _check_imports(path, tree)
    _check_definitions(path, tree, functions)


def check_import(module_file: str, functions: list) -> None:
    """The second step: the module imported in a child process, its functions' signatures
    read from the objects."""
    _import_in_child(Path(module_file), functions)


def _where(path: Path, line) -> str:
    return f"--module-file {path}:{line}" if line else f"--module-file {path}"


def _parse(path: Path) -> ast.Module:
    if path.stat().st_size > MAX_SOURCE_BYTES:
        raise ConfigError(f"--module-file {path} is over {MAX_SOURCE_BYTES >> 20} MiB: not a Python module")
    source = path.read_bytes()
    try:
        return ast.parse(source, filename=str(path))
    except SyntaxError as err:
        return _raise_syntax(path, err)
    except ValueError as err:  # NUL bytes
        raise ConfigError(f"--module-file {path} is not Python source: {err}") from None


def _raise_syntax(path: Path, err: SyntaxError):
    kind = type(err).__name__  # SyntaxError, IndentationError, TabError
    text = f" ({err.text.strip()})" if err.text and err.text.strip() else ""
    raise ConfigError(f"{_where(path, err.lineno)}: {kind}: {err.msg}{text}") from None


def _top_level_imports(tree: ast.Module):
    """(line, top-level module name) of the imports the module always runs: those in a
    try block (optional dependencies) or under an `if` are the module's own business."""
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def _check_imports(path: Path, tree: ast.Module) -> None:
    folder = path.resolve().parent
    for line, name in _top_level_imports(tree):
        # TFX packages every .py beside the module file: a sibling module resolves there.
        if (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file():
            continue
        try:
            found = importlib.util.find_spec(name)  # a top-level name: located, not run
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise ConfigError(f"{_where(path, line)}: No module named {name!r} (install it in kubetfx's "
                              "environment, and in the image for --engine containers)")


def _definitions(tree: ast.Module) -> dict:
    """name -> the node that binds it at the module's top level (the last one wins)."""
    bound = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    bound[target.id] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound[(alias.asname or alias.name).split(".")[0]] = node
        elif isinstance(node, (ast.If, ast.Try)):
            bound.update({name: node for name in _names_in(node)})
    return bound


def _names_in(node) -> set:
    return {n.name for n in ast.walk(node) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))} | {
        t.id for n in ast.walk(node) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}


def _check_definitions(path: Path, tree: ast.Module, functions: list) -> None:
    bound = _definitions(tree)
    for name in functions:
        node = bound.get(name)
        if node is None:
            raise ConfigError(f"{_where(path, None)} defines no {name}({CALLS[name][0]}), which TFX calls; "
                              f"see `kubetfx init-module` for a module that has every function")
        if isinstance(node, ast.FunctionDef):
            problem = _arity_problem(name, node.args)
            if problem:
                raise ConfigError(f"{_where(path, node.lineno)}: {problem}")


def _arity_problem(name: str, args: ast.arguments):
    """What is wrong with `def name(args)` for the call TFX makes, or None."""
    positional = args.posonlyargs + args.args
    required = positional[:len(positional) - len(args.defaults)]
    optional_names = CALLS[name][1]
    shown = f"{name}({', '.join(a.arg for a in positional + args.kwonlyargs)})"
    expected = f"{name}({CALLS[name][0]}" + "".join(f"[, {o}]" for o in optional_names) + ")"
    if not positional and not args.vararg:
        return f"{shown} takes no argument; TFX calls {expected}"
    unpassed = [a.arg for a in required[1:] if a.arg not in optional_names]
    unpassed += [a.arg for a, default in zip(args.kwonlyargs, args.kw_defaults)
                 if default is None and a.arg not in optional_names]
    if unpassed:
        return f"{shown} needs {', '.join(unpassed)}, which TFX does not pass; TFX calls {expected}"
    return None


# ---- the import, in a child --------------------------------------------------------------

def _import_in_child(path: Path, functions: list) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": os.environ.get("TF_USE_LEGACY_KERAS", "1")}
    try:
        child = subprocess.run([sys.executable, "-m", __name__, str(path.resolve()), *functions], env=env,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=IMPORT_TIMEOUT_S, cwd=str(path.resolve().parent))
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{_where(path, None)}: importing it took over {IMPORT_TIMEOUT_S} s "
                          "(does its top level train or read data?)") from None
    lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
    if not lines:
        if child.returncode == 0:
            return
        tail = (child.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(f"{_where(path, None)}: importing it failed: {tail}")
    answer = json.loads(lines[-1])
    if answer.get("problem"):
        raise ConfigError(f"{_where(path, answer.get('line'))}: {answer['problem']}")


def _user_line(error: BaseException, path: Path):
    """The innermost line of the module file in the error's traceback."""
    target = os.path.realpath(path)
    line = getattr(error, "lineno", None) if isinstance(error, SyntaxError) else None
    for frame in traceback.extract_tb(error.__traceback__):
        if os.path.realpath(frame.filename) == target:
            line = frame.lineno
    return line


def _signature_problem(name: str, fn) -> str | None:
    if not callable(fn):
        return f"{name} is a {type(fn).__name__}, not a function; TFX calls {name}({CALLS[name][0]})"
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # a builtin or C function: nothing to read, TFX will tell
    arg, optional_names = CALLS[name]
    try:
        if any(o in signature.parameters for o in optional_names):
            signature.bind(object(), **{o: object() for o in optional_names if o in signature.parameters})
        else:
            signature.bind(object())
    except TypeError as err:
        return f"{name}{signature} cannot be called as TFX calls it, {name}({arg}): {err}"
    return None


def _child(path: str, functions: list) -> dict:
    module_name = "_kubetfx_module_check_" + Path(path).stem
    sys.path.insert(0, str(Path(path).resolve().parent))  # siblings import as under TFX
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except BaseException as err:  # noqa: BLE001 -- whatever the top level raises is the answer
        message = "".join(traceback.format_exception_only(type(err), err)).strip().splitlines()[-1]
        return {"problem": f"importing it raised {message}", "line": _user_line(err, Path(path))}
    for name in functions:
        fn = getattr(module, name, None)
        if fn is None:
            return {"problem": f"defines no {name}({CALLS[name][0]}) once imported, which TFX calls"}
        problem = _signature_problem(name, fn)
        if problem:
            code = getattr(fn, "__code__", None)
            return {"problem": problem, "line": code.co_firstlineno if code else None}
    return {"problem": None}


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], sys.argv[2:])), flush=True)
