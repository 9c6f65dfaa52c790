"""TFT's TransformFeaturesLayer with a TF1 transform graph pruned once, not on every call.

The built-in Transform writes a TF1 SavedModel (`force_tf_compat_v1`). TFT applies one in
TF2 by pruning the loaded graph to the fed inputs and copying it into a new function every
time a traced function calls the layer (tensorflow_transform 1.16
saved/saved_transform_io_v2.py `SavedModelLoader._apply_v1_transform_model_in_v2`:
`WrappedFunction.prune`, `lift_to_graph`). The Trainer calls it in its train and eval
reads, its two signatures and Keras's save: on a 1,000-column table (a 17k-op graph) that
was 8-12 CPU s per call, most of the Trainer's time, and a copy of the graph in the saved
model per call (issue 23). Here, when a caller feeds every input of the graph (the
Trainer's reads and signatures all parse the whole raw schema), the loaded graph is called
as it is, with no prune and no copy: the saved model holds the graph once, and the read
does not hold a second copy beside the loaded one. A caller feeding fewer inputs gets
TFT's prune, done once per set of fed inputs and reused.

This leans on private names of TFT 1.16 (the layer's `_saved_model_loader` and its
`_wrapped_function`) and of TF (a ConcreteFunction's `_arg_keywords`); where they are
missing (another TFT, a TF2 transform graph, which TFT applies without pruning) the layer
is returned as TFT made it.
"""
from __future__ import annotations

import tensorflow_transform as tft


def transform_features_layer(tf_transform_output: tft.TFTransformOutput):
    """tf_transform_output.transform_features_layer(), pruning its TF1 graph once per feed set."""
    layer = tf_transform_output.transform_features_layer()
    loader = getattr(layer, "_saved_model_loader", None)
    wrapped = getattr(loader, "_wrapped_function", None)
    if not getattr(loader, "load_v2_in_compat", False) or not callable(getattr(wrapped, "prune", None)):
        return layer
    # Set on the function object, not on the loader: the layer tracks the loader's __dict__
    # for saving, and would save every cached function beside the one its calls use.
    wrapped.prune = _prune_once(wrapped)
    return layer


def _prune_once(wrapped):
    prune = wrapped.prune
    pruned = {}  # sorted feed names -> (fetch names, the pruned function over feeds in that order)
    # The loaded function's own arguments (its placeholders, in call order; captures excluded)
    # and the keywords it takes them by (it takes none by position).
    arguments = [t.name for t in wrapped.inputs[:len(wrapped.inputs) - len(wrapped.captured_inputs)]]
    keywords = list(getattr(wrapped, "_arg_keywords", None) or [])
    if len(keywords) != len(arguments):
        arguments = []  # not the function TFT 1.16 loads: prune as TFT does
    outputs = wrapped.structured_outputs

    def once(feeds, fetches, name=None, input_signature=None):
        names = [t.name for t in feeds]
        key = tuple(sorted(names))
        if input_signature is not None or not isinstance(fetches, dict) or len(set(names)) != len(names):
            return prune(feeds, fetches, name=name, input_signature=input_signature)  # not TFT's call: as is
        if (arguments and key == tuple(sorted(arguments)) and isinstance(outputs, dict)
                and set(fetches) <= set(outputs)):
            order = [names.index(n) for n in arguments]  # this caller's arguments, in the graph's order
            keys = list(fetches)

            def direct(*args):
                result = wrapped(**{k: args[i] for k, i in zip(keywords, order)})
                return {k: result[k] for k in keys}
            return direct
        if key not in pruned or pruned[key][0] != set(fetches):
            by_name = dict(zip(names, feeds))
            pruned[key] = (set(fetches), prune([by_name[n] for n in key], fetches, name=name))
        function = pruned[key][1]
        order = [names.index(n) for n in key]  # this caller's arguments, in the pruned function's order

        def call(*args):
            return function(*[args[i] for i in order])
        return call
    return once
