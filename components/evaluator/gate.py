"""The "not worse than the served model" gate on what the eval split can resolve.

Accuracy on n labelled eval examples moves in steps of 1/n: on the 47 eval rows of the
embedded penguins one example is 0.021, twice the default `change_tolerance` 0.01, so a
retrain on the same data that differed from the served model by one eval example was
refused as "worse", by noise. The rule: the change tolerance on accuracy is never finer
than one labelled eval example, max(change_tolerance, 1/n). Two examples worse on 47 is
still refused at 0.01; a larger change_tolerance widens it. Mean absolute error has no
such step (one example moves it by that example's error, in the target's units):
change_tolerance applies to it as configured.

Applied by the Evaluator executor to the eval config before either path (its batched
one, TFMA's general one), so both bless alike and the eval_config.json written says the
tolerance used; the blessing records it and why (`Tolerance`), for the run summary.

Also here: rows without a label (an empty label cell: no value in the tf.Example) are no
example of the metric. The batched path leaves them out (preprocessing.MISSING_LABEL);
TFMA's general path counted them as misses, so it is given the eval split without them
(`labelled_copy`, removed after the evaluation). On either path the evaluation's
eval_config.json names the eval split's own files and the ModelEvaluation counts the rows
left out (ROWS_WITHOUT_LABEL)."""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

import tensorflow as tf

from kubetfx.components.evaluator import records

# Past this many labelled rows one example is below 1e-5 of accuracy: counting stops.
SCAN_LIMIT = 100_000
# Keras accuracy and TFMA's diff are float32: k/n - (k+1)/n may fall a few ulps below -1/n.
FLOAT32_SLACK = 1e-6
FLOORED_METRICS = ("SparseCategoricalAccuracy",)
# ModelBlessing custom properties.
APPLIED, CONFIGURED, EXAMPLES = "gate_change_tolerance", "gate_change_tolerance_configured", "gate_eval_examples"
# ModelEvaluation custom property: the eval rows no metric counted, for having no label.
ROWS_WITHOUT_LABEL = "eval_rows_without_label"


@dataclasses.dataclass
class Tolerance:
    configured: float
    applied: float
    examples: int  # labelled eval examples counted (at most SCAN_LIMIT)

    def line(self) -> str:
        """Which tolerance the comparison with the served model used, and why."""
        if self.applied > self.configured:
            return (f"change tolerance {self.applied:.4g}: one of {self.examples} labelled eval examples "
                    f"(change_tolerance {self.configured:g} is finer than the eval split resolves)")
        return f"change tolerance {self.applied:g} (change_tolerance)"


def has_label(serialized: bytes, label: str) -> bool:
    feature = tf.train.Example.FromString(serialized).features.feature.get(label)
    if feature is None:
        return False
    kind = feature.WhichOneof("kind")
    return kind is not None and len(getattr(feature, kind).value) > 0


def _records(files: list, compression: str):
    # Small batches: the count stops as soon as it has seen enough labelled rows.
    for batch in records.batches(files, compression, size=1024):
        yield from batch.numpy()


def count_labelled(files: list, compression: str, label: str, limit: int = SCAN_LIMIT) -> tuple:
    """(labelled rows, rows read), reading until `limit` labelled rows are found."""
    labelled = rows = 0
    for record in _records(files, compression):
        rows += 1
        labelled += has_label(record, label)
        if labelled >= limit:
            break
    return labelled, rows


def _change_thresholds(eval_config):
    """(metric class name, its change threshold) for each metric compared with a baseline."""
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            if metric.threshold.HasField("change_threshold") and metric.threshold.change_threshold.HasField("absolute"):
                yield metric.class_name, metric.threshold.change_threshold


def resolved(eval_config, labelled: int) -> Optional[Tolerance]:
    """Widens, in place, the absolute change tolerance of accuracy to one of `labelled`
    examples where change_tolerance is finer; the Tolerance applied, or None (no change
    threshold on a metric with steps)."""
    result = None
    for class_name, threshold in _change_thresholds(eval_config):
        if class_name not in FLOORED_METRICS:
            continue
        configured = abs(threshold.absolute.value)
        applied = configured
        if 0 < labelled < SCAN_LIMIT and 1.0 / labelled > configured:
            applied = 1.0 / labelled + FLOAT32_SLACK
            # HIGHER_IS_BETTER: the diff must be >= -tolerance.
            threshold.absolute.value = -applied
        result = Tolerance(configured, applied, labelled)
    return result


def configured(eval_config) -> Optional[Tolerance]:
    """The change tolerance as configured (no eval split to resolve it against)."""
    for class_name, threshold in _change_thresholds(eval_config):
        value = abs(threshold.absolute.value)
        return Tolerance(value, value, 0)
    return None


def write(blessing, tolerance: Tolerance) -> None:
    blessing.set_float_custom_property(APPLIED, float(tolerance.applied))
    blessing.set_float_custom_property(CONFIGURED, float(tolerance.configured))
    blessing.set_int_custom_property(EXAMPLES, int(tolerance.examples))


def read(blessing) -> Optional[Tolerance]:
    """From a TFX ModelBlessing or an MLMD artifact proto (numbers may come back as text)."""
    if blessing is None:
        return None
    properties = getattr(blessing, "mlmd_artifact", blessing).custom_properties
    if APPLIED not in properties:
        return None

    def value(name):
        item = properties[name]
        kind = item.WhichOneof("value")
        return getattr(item, kind) if kind else 0
    return Tolerance(float(value(CONFIGURED)), float(value(APPLIED)), int(value(EXAMPLES)))


def labelled_copy(files: list, compression: str, label: str, folder: str) -> int:
    """Writes the rows of `files` that have a label to one file in `folder` (same
    compression); the number of rows left out."""
    left_out = 0
    suffix = ".gz" if compression == "GZIP" else ""
    path = os.path.join(folder, f"data_tfrecord-00000-of-00001{suffix}")
    with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type=compression)) as writer:
        for record in _records(files, compression):
            if has_label(record, label):
                writer.write(record)
            else:
                left_out += 1
    return left_out
