"""The one DAG scheduler both engines use: `run/`'s in-process runner and `kubeflow/`'s
local backend (dag_scheduler.py)."""
