"""The user's own files a compiled spec reads at run time (`--module-file`, `--schema-file`),
staged to the object store the way the data is (data_import.py), not baked into the image.

TFX compiles both as a host path in a task parameter, which no pod has; and it packages a
module file as a wheel under the pipeline root through tf.io.gfile, which has no `minio://`
(UnimplementedError at compile). So the compiler turns each off and stages the file:

- its URI is `minio://mlpipeline/kubetfx/files/<pipeline>/<sha256[:16]>/<file name>`: the
  content is in the name, so a changed file is a new URI, a new importer artifact and a new
  cache key downstream, and the same file hits the cache (KFP 2.5.0 cacheutils/cache.go
  GenerateCacheKey reads the input artifacts' ids; importer_launcher.go keeps one artifact
  per URI with `reimport: false`);
- an importer task `kubetfx-file-<parameter>` imports that URI (a constant: the spec is
  only valid with that content), and each task that read the host path gets the artifact
  as input `kubetfx_file_<parameter>`; its parameter keeps the URI for the UI, and the
  entrypoint points it at the launcher's local copy (components/container/entrypoint.py);
- `kubetfx submit` uploads the file there (it needs the same file: the hash is checked),
  `run --engine containers` does the same in the local backend.

Why not the image: a module file changes with every experiment, and an image per change means
a build, a push and a tag to track for every run; the object store already travels with the
run. The curated schema of the embedded data ships in the image (it is kubetfx's own file)."""
from __future__ import annotations

import hashlib
from pathlib import Path

FILES_PREFIX = "minio://mlpipeline/kubetfx/files"
INPUT_PREFIX = "kubetfx_file_"       # input artifact kubetfx_file_<parameter> (the entrypoint reads it)
TASK_PREFIX = "kubetfx-file-"
DATASET_TYPE = {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"}
PARAMETERS = ("module_file", "schema_file")   # the TFX exec properties that name a user's file


def uri_for(pipeline: str, path: Path) -> str:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return f"{FILES_PREFIX}/{pipeline}/{digest}/{Path(path).name}"


def _names_of(path: Path) -> set:
    return {str(path), str(Path(path).resolve()), str(Path(path).absolute())}


def stage(spec: dict, pipeline: str, files: dict) -> dict:
    """`files`: {parameter: local path}. Every task parameter holding that path gets the
    staged file instead; returns {uri: local path}, what has to be uploaded."""
    uploads = {}
    tasks = spec["root"]["dag"]["tasks"]
    for parameter, local in sorted(files.items()):
        if local is None:
            continue
        local = Path(local)
        uri, names = uri_for(pipeline, local), _names_of(local)
        readers = [name for name, task in tasks.items()
                   if task.get("inputs", {}).get("parameters", {}).get(parameter, {})
                   .get("runtimeValue", {}).get("constant") in names]
        if not readers:
            continue
        importer = f"{TASK_PREFIX}{parameter.replace('_', '-')}"
        _add_importer(spec, importer, uri)
        for name in readers:
            _wire(spec, name, parameter, importer, uri)
        uploads[uri] = local
    return uploads


def _add_importer(spec: dict, task: str, uri: str) -> None:
    component, executor = f"comp-{task}", f"exec-{task}"
    spec["components"][component] = {
        "executorLabel": executor,
        "outputDefinitions": {"artifacts": {"artifact": {"artifactType": dict(DATASET_TYPE)}}},
    }
    spec["deploymentSpec"]["executors"][executor] = {"importer": {
        "artifactUri": {"constant": uri}, "typeSchema": dict(DATASET_TYPE)}}
    spec["root"]["dag"]["tasks"][task] = {
        "cachingOptions": {"enableCache": True}, "componentRef": {"name": component}, "taskInfo": {"name": task}}


def _wire(spec: dict, task_name: str, parameter: str, importer: str, uri: str) -> None:
    task = spec["root"]["dag"]["tasks"][task_name]
    component = spec["components"][task["componentRef"]["name"]]
    key = INPUT_PREFIX + parameter
    component.setdefault("inputDefinitions", {}).setdefault("artifacts", {})[key] = {
        "artifactType": dict(DATASET_TYPE)}
    inputs = task.setdefault("inputs", {})
    inputs.setdefault("artifacts", {})[key] = {
        "taskOutputArtifact": {"producerTask": importer, "outputArtifactKey": "artifact"}}
    inputs["parameters"][parameter] = {"runtimeValue": {"constant": uri}}
    task["dependentTasks"] = sorted(set(task.get("dependentTasks", [])) | {importer})


def staged_uris(spec: dict) -> dict:
    """{parameter: uri} of the files a spec compiled by `stage` reads."""
    found = {}
    for name, task in spec["root"]["dag"]["tasks"].items():
        if name.startswith(TASK_PREFIX):
            executor = spec["components"][task["componentRef"]["name"]]["executorLabel"]
            uri = spec["deploymentSpec"]["executors"][executor]["importer"]["artifactUri"].get("constant")
            if uri:
                found[name[len(TASK_PREFIX):].replace("-", "_")] = uri
    return found


def user_files(module_file, schema_file) -> dict:
    return {"module_file": module_file, "schema_file": schema_file}


def check_same_file(parameter: str, local: Path, uri: str) -> None:
    """Raises ValueError when `local` is not the file the spec was compiled with."""
    pipeline = uri[len(FILES_PREFIX) + 1:].split("/", 1)[0]
    if uri_for(pipeline, local) != uri:
        raise ValueError(f"--{parameter.replace('_', '-')} {local} is not the file compiled into the spec "
                         f"({uri.rsplit('/', 2)[-2]} is the start of its sha256): recompile, or pass that file")


def uploads(spec: dict, files: dict) -> dict:
    """{uri: local path} for the files of `files` ({parameter: local path}) the spec stages."""
    return {uri: Path(files[parameter]) for parameter, uri in staged_uris(spec).items() if files.get(parameter)}
