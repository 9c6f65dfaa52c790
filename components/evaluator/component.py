"""Evaluator: TFMA metrics on the eval split; blesses above the threshold and not worse than
the model served now (beyond `change_tolerance`, never finer than one eval row: gate.py;
the served model: served_baseline.py); then the blessed
model's acceptance test on the held-out test split (acceptance.py)."""
from __future__ import annotations

import tensorflow_model_analysis as tfma
from tfx.dsl.components.base import executor_spec

from kubetfx.components import tfx_api as tfx
from kubetfx.components.evaluator import acceptance, executor
from kubetfx.components.trainer import model as trainer_model

# (metric class, higher is better) for the gate of each task.
GATE_METRICS = {
    "classification": ("SparseCategoricalAccuracy", True),
    "regression": ("MeanAbsoluteError", False),
}


NO_BOUND = 1e300  # "no absolute bound": every finite metric value passes


def gate_metric(task: str) -> str:
    return GATE_METRICS[task][0]


def eval_config(config) -> tfma.EvalConfig:
    metric, higher_is_better = GATE_METRICS[config.task]
    threshold = config.effective_threshold()
    if threshold is None:
        # TFMA reports a metric without any threshold as `missing_thresholds` (a failed
        # validation) on a first run, when the baseline comparison is dropped.
        threshold = NO_BOUND if not higher_is_better else -NO_BOUND
    bound = {"lower_bound": {"value": threshold}} if higher_is_better else {"upper_bound": {"value": threshold}}
    value_threshold = tfma.GenericValueThreshold(**bound)
    direction = tfma.MetricDirection.HIGHER_IS_BETTER if higher_is_better else tfma.MetricDirection.LOWER_IS_BETTER
    tolerance = -config.change_tolerance if higher_is_better else config.change_tolerance
    change_threshold = tfma.GenericChangeThreshold(direction=direction, absolute={"value": tolerance})
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name="serving_default",
            label_key=config.label,
            prediction_key=trainer_model.prediction_key(config.task),
            preprocessing_function_names=["transform_features"],
        )],
        # The blessing needs one overall metric; no slices, no extra metrics computed.
        slicing_specs=[tfma.SlicingSpec()],
        # Skip the metrics compiled into the Keras model (loss...): only the gate is computed.
        options=tfma.Options(include_default_metrics={"value": False}),
        metrics_specs=[tfma.MetricsSpec(metrics=[tfma.MetricConfig(
            class_name=metric,
            threshold=tfma.MetricThreshold(value_threshold=value_threshold, change_threshold=change_threshold),
        )])],
    )


def build(config, example_gen, trainer, baseline) -> tfx.components.Evaluator:
    """`baseline`: the ServedBaseline component (served_baseline.py)."""
    component = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["baseline_model"],
        eval_config=eval_config(config),
        # Blesses on eval only: the test split is the acceptance test's (acceptance.py).
        example_splits=["eval"],
    )
    if config.acceptance_threshold is not None:
        # Not a parameter of TFX's EvaluatorSpec: both compilers pass every exec property
        # to the executor (only when set, so specs without it do not change).
        component.exec_properties[acceptance.THRESHOLD_KEY] = float(config.acceptance_threshold)
    # Same component, same artifacts; the gate computed in large batches (see executor.py).
    component.executor_spec = executor_spec.BeamExecutorSpec(executor.Executor)
    return component
