"""A local Kubeflow Pipelines v2 backend: runs a compiled spec (`kubetfx run --engine
containers`) by the rules the open-source backend applies, each module reproducing one part
of kubeflow/pipelines `backend/src` and citing the file and tag it follows:

- (`pipelines/kubeflow/backend_rules`: what the apiserver refuses at upload and run creation);
- `driver`: the executor input a task gets (parameters, artifacts, output URIs);
- `cache`: the cache key and fingerprint, and the cache of finished executions;
- `launcher`: staging artifacts between the object store and the container, the executor
  output, the upload; `importer`: importer tasks;
- `docker`: the task pod as a container that sees what a pod sees (no host bind mounts);
- `retry`: Argo's retry strategy as the emulated version compiles it;
- `dag`: the DAG as Argo runs it (independent tasks side by side, fail fast);
- `metadata`: the artifacts the run records (ML Metadata's role: ids, types, URIs);
- `store`: the object store on loopback, kept across runs;
- `backend`: a run from start to summary.
"""
