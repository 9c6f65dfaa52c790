"""Trainer: a Keras model on the transformed features, exported with the transform inside."""
from kubetfx.components import tfx_api as tfx

from kubetfx.components.transform import component as transform_component

RUN_FN = "kubetfx.components.trainer.model.run_fn"
TUNER_FN = "kubetfx.components.trainer.model.tuner_fn"


def custom_config(config) -> dict:
    """What the built-in run_fn reads (a module file gets it too, in fn_args.custom_config)."""
    return {"label": config.label, "task": config.task, "batch_size": config.batch_size,
            "learning_rate": config.learning_rate, "max_epochs": config.max_epochs,
            "train_seconds": config.train_seconds,
            "early_stopping_patience": config.early_stopping_patience}


def _examples(config, example_gen, transform):
    # The built-in run_fn transforms raw examples on the fly (see transform.materializes).
    return (transform.outputs["transformed_examples"] if transform_component.materializes(config)
            else example_gen.outputs["examples"])


def _inputs(config, example_gen, transform, schema_gen) -> dict:
    """What the Tuner and the Trainer both read. Steps bound a module file's training; the
    built-in run_fn and tuner_fn train in epochs."""
    return dict(examples=_examples(config, example_gen, transform),
                transform_graph=transform.outputs["transform_graph"],
                schema=schema_gen.outputs["schema"],
                train_args=tfx.proto.TrainArgs(num_steps=config.train_steps),
                eval_args=tfx.proto.EvalArgs(num_steps=config.eval_steps))


def build_tuner(config, example_gen, transform, schema_gen) -> "tfx.components.Tuner":  # read by --tune only
    """`--tune`: TFX's Tuner (KerasTuner) before the Trainer; a module file brings its tuner_fn."""
    code = {"module_file": config.module_file} if config.module_file else {"tuner_fn": TUNER_FN}
    budget = {"tune_trials": config.tune_trials, "tune_epochs": config.tune_epochs}
    return tfx.components.Tuner(**_inputs(config, example_gen, transform, schema_gen),
                                custom_config={**custom_config(config), **budget}, **code)


def build(config, example_gen, transform, schema_gen, tuner=None) -> tfx.components.Trainer:
    # run_fn by dotted name: imported from the installed package, no user-code wheel.
    code = {"module_file": config.module_file} if config.module_file else {"run_fn": RUN_FN}
    if tuner is not None:
        code["hyperparameters"] = tuner.outputs["best_hyperparameters"]
    return tfx.components.Trainer(**_inputs(config, example_gen, transform, schema_gen),
                                  custom_config=custom_config(config), **code)
