"""The acceptance test: the gate metric of a blessed model on the held-out `test` split,
which no training, early stopping, tuning, Transform analysis or blessing decision reads
(ExampleGen writes it, example_gen/executor.DEFAULT_SPLITS). The eval split chose the model
(early stopping, the blessing): its metric is optimistic; this one is not.

Computed by the Evaluator executor once per blessed model (a cached Evaluator is not run
again) and recorded on the ModelBlessing as custom properties, so the run summary, the
report and `kubetfx models` read it from ML Metadata with the blessing itself. With a
threshold (`acceptance_threshold`), a model below it gets NOT_BLESSED written over its
blessing: the Pusher, every runner and the exit code then treat it as not blessed, and
`refused` says why. This module only names, writes and reads the record."""
from __future__ import annotations

import dataclasses
from typing import Optional

SPLIT = "test"
THRESHOLD_KEY = "kubetfx_acceptance_threshold"  # Evaluator exec property, set only when configured
# ModelBlessing custom properties.
METRIC, VALUE, EXAMPLES, BOUND, PASSED, ERROR = (
    "acceptance_metric", "acceptance_value", "acceptance_examples", "acceptance_threshold",
    "acceptance_passed", "acceptance_error")


@dataclasses.dataclass
class Acceptance:
    metric: Optional[str]            # e.g. sparse_categorical_accuracy
    value: Optional[float]
    examples: int = 0
    threshold: Optional[float] = None
    passed: Optional[bool] = None    # None: no threshold
    higher_is_better: bool = True
    error: Optional[str] = None      # why it could not be computed

    def line(self) -> str:
        """One line for the summary, `models` and the report."""
        if self.error:
            return f"acceptance test not computed: {self.error}"
        text = f"test split {self.metric} {self.value:.3f} ({self.examples} held-out examples)"
        if self.threshold is not None:
            op = ">=" if self.higher_is_better else "<="
            text += f", needs {op} {self.threshold:g}: {'passed' if self.passed else 'FAILED'}"
        return text

    def refusal(self) -> Optional[str]:
        """The line saying the model was not pushed because of this test, or None."""
        if self.threshold is None or self.passed:
            return None
        if self.error:
            return f"model NOT pushed: the acceptance test could not be computed ({self.error})"
        worse = "below" if self.higher_is_better else "above"
        return (f"model NOT pushed: acceptance test {self.metric} {self.value:.4g} on the held-out test split "
                f"is {worse} acceptance_threshold {self.threshold:g}")


def higher_is_better(metric: str) -> bool:
    return "error" not in (metric or "")


def _custom(artifact, name):
    """A custom property of a TFX Artifact or an MLMD artifact proto, or None."""
    properties = getattr(artifact, "mlmd_artifact", artifact).custom_properties
    if name not in properties:
        return None
    value = properties[name]
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def read(blessing) -> Optional[Acceptance]:
    """The acceptance test recorded on a ModelBlessing (TFX Artifact or MLMD proto), if any."""
    if blessing is None:
        return None
    metric, value, error = _custom(blessing, METRIC), _custom(blessing, VALUE), _custom(blessing, ERROR)
    if value is None and error is None:
        return None
    # Numbers may come back as text (the local KFP backend records KFP's JSON properties so).
    passed, threshold = _custom(blessing, PASSED), _custom(blessing, BOUND)
    return Acceptance(metric=metric, value=None if value is None else float(value),
                      examples=int(_custom(blessing, EXAMPLES) or 0),
                      threshold=None if threshold is None else float(threshold),
                      passed=None if passed is None else bool(int(passed)),
                      higher_is_better=higher_is_better(metric), error=error)


def write(blessing, result: Acceptance) -> None:
    """Onto a TFX ModelBlessing artifact (the executor's output)."""
    if result.error:
        blessing.set_string_custom_property(ERROR, result.error)
    else:
        blessing.set_string_custom_property(METRIC, result.metric)
        blessing.set_float_custom_property(VALUE, float(result.value))
        blessing.set_int_custom_property(EXAMPLES, int(result.examples))
    if result.threshold is not None:
        blessing.set_float_custom_property(BOUND, float(result.threshold))
        blessing.set_int_custom_property(PASSED, int(bool(result.passed)))


def judge(metric: str, value: float, threshold: Optional[float]) -> Optional[bool]:
    if threshold is None:
        return None
    return value >= threshold if higher_is_better(metric) else value <= threshold
