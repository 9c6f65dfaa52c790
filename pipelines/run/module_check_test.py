"""A --module-file is checked before any stage: one line naming the user's file and line,
exit 2 (before: a Transform failure 17 s into the run, showing TFX's temporary copy)."""
from __future__ import annotations

import pytest

from kubetfx.pipelines import cli
from kubetfx.pipelines.config import ConfigError, PipelineConfig
from kubetfx.pipelines.run import inputs, module_check
from kubetfx.pipelines.templates import TEMPLATE

GOOD = "def preprocessing_fn(inputs):\n    return inputs\n\n\ndef run_fn(fn_args):\n    pass\n"

# (case, module source, the message: path:line and the problem)
CASES = [
    ("syntax error", GOOD.replace("def run_fn(fn_args):", "def run_fn(fn_args)"),
     "m.py:5: SyntaxError: expected ':' (def run_fn(fn_args))"),
    ("indentation", GOOD.replace("    pass", "pass"), "m.py:6: IndentationError: expected an indented block"),
    ("import that does not resolve", "import os\nimport tensorflw_transform as tft\n" + GOOD,
     "m.py:2: No module named 'tensorflw_transform'"),
    ("from-import that does not resolve", "from tfx_bzl.public import tfxio\n" + GOOD, "m.py:1: No module named 'tfx_bzl'"),
    ("no run_fn", GOOD.split("\n\n\n")[0] + "\n", "m.py defines no run_fn(fn_args), which TFX calls"),
    ("no preprocessing_fn", GOOD.split("\n\n\n")[1], "m.py defines no preprocessing_fn(inputs), which TFX calls"),
    ("run_fn without its argument", GOOD.replace("run_fn(fn_args)", "run_fn()"),
     "m.py:5: run_fn() takes no argument; TFX calls run_fn(fn_args)"),
    ("preprocessing_fn wanting what TFX does not pass", GOOD.replace("(inputs)", "(inputs, schema)"),
     "m.py:1: preprocessing_fn(inputs, schema) needs schema, which TFX does not pass"),
]


@pytest.fixture
def write(tmp_path):
    def write(source: str):
        path = tmp_path / "m.py"
        path.write_text(source)
        return path
    return write


@pytest.mark.parametrize("case, source, message", CASES, ids=[c[0] for c in CASES])
def test_a_broken_module_file_is_refused_before_the_run(write, tmp_path, case, source, message):
    path = write(source)
    config = PipelineConfig(home=str(tmp_path / "home"), module_file=str(path))
    with pytest.raises(ConfigError) as raised:
        inputs.prepare(config)
    assert str(raised.value).startswith(f"--module-file {tmp_path}/") and message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_through_the_cli_one_line_and_exit_2(write, tmp_path, capsys):
    path = write(CASES[0][1])
    assert cli.main(["run", "--home", str(tmp_path / "home"), "--module-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"kubetfx: error: --module-file {path}:5: SyntaxError: expected ':' (def run_fn(fn_args))\n"
    assert not (tmp_path / "home").exists()  # nothing started


def test_what_the_module_may_do_is_accepted(write):
    source = ("try:\n    import not_installed_optional\nexcept ImportError:\n    pass\n"
              "import helper_beside_it\n"
              "def preprocessing_fn(inputs, custom_config=None):\n    return inputs\n"
              "def run_fn(*args, **kwargs):\n    pass\n"
              "tuner_fn = run_fn\n")
    path = write(source)
    (path.parent / "helper_beside_it.py").write_text("")  # TFX packages the folder's .py files
    module_check.check_source(str(path), ["preprocessing_fn", "run_fn", "tuner_fn"])


def test_the_template_passes_the_source_check():
    module_check.check_source(str(TEMPLATE), ["preprocessing_fn", "run_fn"])


@pytest.mark.slow  # a child process imports TensorFlow
def test_an_error_of_the_module_top_level_names_its_line_and_the_template_imports(write, monkeypatch):
    path = write("import tensorflow as tf\nSCALE = tf.constant(2.0) * undefined_factor\n" + GOOD)
    with pytest.raises(ConfigError) as raised:
        module_check.check_import(str(path), ["preprocessing_fn", "run_fn"])
    assert str(raised.value) == (f"--module-file {path}:2: importing it raised "
                                 "NameError: name 'undefined_factor' is not defined")
    monkeypatch.chdir(TEMPLATE.parent.parent)  # a path relative to where kubetfx runs
    module_check.check_import("templates/module.py", ["preprocessing_fn", "run_fn"])
