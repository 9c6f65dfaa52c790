"""The kubetfx pipeline, written once: every runner (local, containers, Kubeflow) builds it here."""
from __future__ import annotations

from kubetfx.components import tfx_api as tfx
from kubetfx.components.evaluator import component as evaluator
from kubetfx.components.evaluator import served_baseline
from kubetfx.components.example_gen import component as example_gen
from kubetfx.components.example_validator import component as example_validator
from kubetfx.components.infra_validator import component as infra_validator
from kubetfx.components.pusher import component as pusher
from kubetfx.components.schema_gen import component as schema_gen
from kubetfx.components.statistics_gen import component as statistics_gen
from kubetfx.components.trainer import component as trainer
from kubetfx.components.transform import component as transform
from kubetfx.components import beam_options
from kubetfx.pipelines.config import PipelineConfig


def create_components(config: PipelineConfig) -> list:
    gen = example_gen.build(config)
    stats = statistics_gen.build(config, gen)
    schema = schema_gen.build(config, stats)
    validator = example_validator.build(config, stats, schema)
    xform = transform.build(config, gen, schema)
    # Transform waits for the data to pass validation (the validator halts on anomalies).
    xform.add_upstream_node(validator)
    tuner = trainer.build_tuner(config, gen, xform, schema) if config.tune else None
    train = trainer.build(config, gen, xform, schema, tuner)
    baseline = served_baseline.build(config, train)
    evaluate = evaluator.build(config, gen, train, baseline)
    infra = infra_validator.build(config, train, gen)
    push = pusher.build(config, train, evaluate, infra, stats, schema)
    return [gen, stats, schema, validator, xform, *([tuner] if tuner else []), train, baseline, evaluate, infra,
            push]


def create_pipeline(config: PipelineConfig, *, pipeline_root: str | None = None,
                    metadata_connection_config=None) -> tfx.dsl.Pipeline:
    """`config.task` must be set (see `kubetfx.pipelines.dataset.complete`)."""
    if config.task is None:
        raise ValueError("config.task must be resolved before building the pipeline")
    return tfx.dsl.Pipeline(
        pipeline_name=config.name,
        pipeline_root=pipeline_root or str(config.pipeline_root),
        components=create_components(config),
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_options.beam_args(config),
    )
