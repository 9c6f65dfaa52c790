"""The object store KFP keeps artifacts in (MinIO, SeaweedFS, S3, or any S3-protocol server),
seen through boto3: `kubetfx submit` uploads data here, the local KFP backend stages
artifacts through it as KFP's launcher does.

URIs are the launcher's: `minio://bucket/key`, `s3://bucket/key` (both S3 protocol; the
endpoint comes from the caller, as KFP takes it from its object-store config). `gs://` is
not served by boto3 and is refused with a clear message.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterator, NamedTuple

S3_SCHEMES = ("minio://", "s3://")


class ObjectStoreError(RuntimeError):
    """A URI or store a user can fix; the message says how."""


class Location(NamedTuple):
    bucket: str
    key: str  # no leading slash; "" for the bucket's root


def parse_uri(uri: str) -> Location:
    for scheme in S3_SCHEMES:
        if uri.startswith(scheme):
            bucket, _, key = uri[len(scheme):].partition("/")
            if not bucket:
                raise ObjectStoreError(f"{uri!r} names no bucket (expected {scheme}BUCKET/PATH)")
            return Location(bucket, key.strip("/"))
    raise ObjectStoreError(f"{uri!r} is not an S3-protocol URI ({', '.join(S3_SCHEMES)})")


def client(endpoint: str, access_key: str | None = None, secret_key: str | None = None,
           region: str = "us-east-1", timeout_seconds: float = 30.0):
    """A boto3 S3 client for `endpoint` (http://host:port); every call bounded in time."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=region,
        aws_access_key_id=access_key or os.environ.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=secret_key or os.environ.get("AWS_SECRET_ACCESS_KEY"),
        config=Config(connect_timeout=timeout_seconds, read_timeout=timeout_seconds,
                      retries={"max_attempts": 3, "mode": "standard"},
                      s3={"addressing_style": "path"}))


def list_objects(s3, uri: str) -> Iterator[dict]:
    """Every object under `uri` (a prefix), as boto3's listing entries (Key, Size, ETag)."""
    where = parse_uri(uri)
    prefix = where.key + "/" if where.key else ""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=where.bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def upload_tree(s3, local: str | Path, uri: str) -> int:
    """Uploads a file, or every file below a folder, to `uri`; returns the number of files."""
    local, where = Path(local), parse_uri(uri)
    files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
    for path in files:
        relative = path.name if local.is_file() else path.relative_to(local).as_posix()
        s3.upload_file(str(path), where.bucket, "/".join(filter(None, [where.key, relative])))
    return len(files)


def download_tree(s3, uri: str, local: str | Path) -> int:
    """Downloads the object at `uri`, or every object below it, to `local`; returns the count.
    As KFP's launcher (objectstore.DownloadBlob), a key equal to the prefix is a file."""
    local, where = Path(local), parse_uri(uri)
    count = 0
    for entry in list_objects(s3, uri):
        relative = entry["Key"][len(where.key):].lstrip("/") if where.key else entry["Key"]
        if not relative or entry["Key"].endswith("/"):
            continue  # a zero-byte directory marker
        target = local / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(where.bucket, entry["Key"], str(target))
        count += 1
    if count == 0 and where.key:
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(where.bucket, where.key, str(local))
            count = 1
        except Exception as err:  # botocore's ClientError: the key is not an object either
            if "404" not in str(err) and "Not Found" not in str(err):
                raise
    return count


def data_fingerprint(s3, uri: str) -> str:
    """What the data under `uri` is, for cache keys: sha256 over each object's relative key,
    size and ETag (the store's content hash). New, changed or removed files change it;
    re-uploading the same bytes does not."""
    where = parse_uri(uri)
    digest = hashlib.sha256()
    for entry in sorted(list_objects(s3, uri), key=lambda e: e["Key"]):
        relative = entry["Key"][len(where.key):].lstrip("/")
        digest.update(f"{relative}\t{entry['Size']}\t{entry['ETag'].strip(chr(34))}\n".encode())
    return digest.hexdigest()
