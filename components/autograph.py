"""Keeps TensorFlow's AutoGraph out of library code it does not know.

AutoGraph rewrites the source of every Python function a `tf.function` calls, except in
packages on its skip list. TF 2.16's list has `keras` and `tensorflow` but not `tf_keras`
(the Keras 2 that TFX 1.16 trains with) nor `tensorflow_transform`, so the first
`model.fit` re-parses hundreds of Keras functions: 17 of 19 s on 2 cores for the default
model, on every Trainer run. That code is already graph code; user code is still converted.
"""
from __future__ import annotations

LIBRARIES = ("tf_keras", "tensorflow_transform", "tensorflow_model_analysis", "tfx_bsl")


def skip_libraries() -> None:
    """Adds LIBRARIES to AutoGraph's do-not-convert rules (once; safe to call again)."""
    from tensorflow.python.autograph.core import config, config_lib

    def skipped(name):
        return any(isinstance(rule, config_lib.DoNotConvert) and rule.matches(name)
                   for rule in config.CONVERSION_RULES)

    config.CONVERSION_RULES = tuple(
        config_lib.DoNotConvert(name) for name in LIBRARIES if not skipped(name)
    ) + config.CONVERSION_RULES
