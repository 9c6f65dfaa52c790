"""New data or inference logs in the object store (`minio://bucket/prefix`, `s3://...`),
copied to a local scratch folder before they are read: what the monitor CronJob compares.

The endpoint is $KUBETFX_OBJECT_STORE_ENDPOINT, as for `kubetfx submit`; the keys come
from boto3's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a cloud role). A store
that does not answer is not bad input: it raises StoreUnavailable, which the monitor
turns into exit 1, so the CronJob's Job retries it (manifests/base/monitor/cron-job.yaml)."""
from __future__ import annotations

import os
from pathlib import Path

from kubetfx.pipelines.config import ConfigError
from kubetfx.pipelines.kubeflow import object_store
from kubetfx.pipelines.kubeflow.data_upload import ENDPOINT_ENV


class StoreUnavailable(RuntimeError):
    """The store did not answer or refused; a later attempt may succeed."""


def is_remote(location: str | None) -> bool:
    return bool(location) and location.startswith(object_store.S3_SCHEMES)


def client(uri: str):
    endpoint = os.environ.get(ENDPOINT_ENV)
    if not endpoint and uri.startswith("minio://"):
        raise ConfigError(f"{uri}: set ${ENDPOINT_ENV} to the object store's address (e.g. http://minio-service.kubeflow:9000)")
    return object_store.client(endpoint or None)  # none: boto3's AWS default for s3://


def check_uri(uri: str) -> None:
    try:
        object_store.parse_uri(uri)
    except object_store.ObjectStoreError as err:
        raise ConfigError(str(err)) from None


def download(uri: str, scratch: Path) -> Path:
    """Every object under `uri` in `scratch`; ConfigError when there is none."""
    check_uri(uri)
    s3 = client(uri)
    target = Path(scratch) / "download"
    try:
        count = object_store.download_tree(s3, uri, target)
    except Exception as err:  # botocore: endpoint down, no such bucket, refused credentials
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "NoSuchBucket" in message:
            raise ConfigError(f"{uri}: no such bucket") from None
        raise StoreUnavailable(f"cannot read {uri}: {message}") from None
    if count == 0:
        raise ConfigError(f"nothing under {uri}: no objects to compare")
    return target
