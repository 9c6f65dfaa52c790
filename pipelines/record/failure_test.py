"""failure.explain on real exceptions raised from files, as a stage's traceback shows them."""
from __future__ import annotations

import importlib.util
import shutil

import pytest

from kubetfx.pipelines.record import failure


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _raised(fn, *args):
    with pytest.raises(Exception) as info:
        fn(*args)
    return info.value


def test_names_the_failing_line_of_a_module_file_and_its_message(tmp_path):
    module = tmp_path / "my_module.py"
    module.write_text("def helper(d):\n    return d['bill_length']\n\n\ndef run_fn(args):\n    return helper({})\n")
    err = _raised(_load(module).run_fn, None)
    explanation = failure.explain(err)
    assert explanation.error == "KeyError: 'bill_length'"
    assert [(f.file, f.line, f.function) for f in explanation.frames][-2:] == [
        (str(module), 6, "run_fn"), (str(module), 2, "helper")]
    assert explanation.frames[-1].code == "return d['bill_length']"


def test_a_temporary_copy_of_the_module_file_is_named_by_the_users_path(tmp_path):
    # TFX runs a module file from its user-code wheel, installed in a temporary directory.
    original = tmp_path / "user" / "trainer_module.py"
    original.parent.mkdir()
    original.write_text("def run_fn(args):\n    raise ValueError('no label column')\n")
    copy = tmp_path / "tmpwheel" / "trainer_module.py"
    copy.parent.mkdir()
    shutil.copy(original, copy)
    err = _raised(_load(copy).run_fn, None)
    explanation = failure.explain(err, {"trainer_module.py": str(original)})
    assert explanation.frames[-1].file == str(original) and explanation.frames[-1].line == 2
    assert "\n".join(explanation.lines()).startswith("ValueError: no label column\n  " + str(original) + ":2 in run_fn")


def test_a_library_wrapping_the_error_still_points_at_the_cause(tmp_path):
    module = tmp_path / "wrapped.py"
    module.write_text("import json\n\ndef run_fn():\n    return json.loads('{oops')\n")
    err = _raised(_load(module).run_fn)
    explanation = failure.explain(err)
    assert explanation.error.startswith("JSONDecodeError: Expecting property name")  # module prefix dropped
    assert explanation.frames[-1].file == str(module) and explanation.frames[-1].line == 4


def test_an_error_raised_only_in_libraries_shows_where_it_was_raised():
    err = _raised(int, "not a number")
    explanation = failure.explain(err)
    assert explanation.error == "ValueError: invalid literal for int() with base 10: 'not a number'"
    assert len(explanation.frames) <= 1


TF_FUNCTION_MODULE = '''import tensorflow as tf


def run_fn(fn_args):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def serve(x):
        return {"y": x + tf.constant("a")}

    return serve.get_concrete_function()
'''


def test_an_error_inside_a_tf_function_names_the_users_file_and_line(tmp_path):
    """TensorFlow puts the user's line in its message ("in user code:"), with the path TFX
    ran the module from; the traceback shows AutoGraph's generated copy and the call that
    traced the function (model.save in a run_fn)."""
    user = tmp_path / "user" / "my_module.py"
    copy = tmp_path / "tfx-wheel" / "my_module.py"  # TFX's installed copy of the user's file
    for path in (user, copy):
        path.parent.mkdir()
        path.write_text(TF_FUNCTION_MODULE)
    err = _raised(_load(copy).run_fn, None)
    explanation = failure.explain(err, {"my_module.py": str(user)})
    innermost = explanation.frames[-1]
    assert (innermost.file, innermost.line, innermost.function) == (str(user), 7, "serve")
    assert innermost.code == 'return {"y": x + tf.constant("a")}'
    assert not any("__autograph_generated_file" in f.file for f in explanation.frames)
    assert str(copy) not in "\n".join(explanation.lines()) and str(user) in explanation.error
