"""Kubeflow Pipelines: the compiled spec, the local stand-in of its backend, submit."""
