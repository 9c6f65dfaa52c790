"""kubetfx's stages. Importing any of them first defers the upstream package `__init__`s that
load far more than a stage uses (deferred_imports.py): every entry point (the CLI, a stage's
container, the model server) imports this package before TFX."""
from kubetfx.components import deferred_imports

deferred_imports.install()
