"""What to tell a user whose home (or serving directory, or log folder) cannot be written:
a full disk, a quota, a file-size limit, a read-only mount or folder. One line naming the
file and what to do, for every command alike (cli.main maps it to exit 2), instead of the
OSError traceback of whichever write met it first."""
from __future__ import annotations

import errno
import os
from typing import Optional

_FULL = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
         errno.EFBIG: "the file grew past the size limit (ulimit -f, or the filesystem's)"}
_READ_ONLY = {errno.EROFS: "the filesystem is mounted read-only", errno.EACCES: "permission denied",
              errno.EPERM: "operation not permitted"}


def describe(err: OSError) -> Optional[str]:
    """The one line for a storage error, or None for any other OSError (left to crash)."""
    where = err.filename or "a file of the home"
    if err.errno in _FULL:
        return (f"cannot write {where}: {_FULL[err.errno]}; free space there (or pass --home on another "
                "disk) and re-run: nothing was published")
    if err.errno in _READ_ONLY:
        return (f"cannot write {where}: {_READ_ONLY[err.errno]}; make the home writable for this user "
                "(or pass --home to a writable folder) and re-run")
    return None


# TensorFlow's file system (tf.io.gfile: the Pusher's publish, a rollback's copy) reports
# errno as its own status codes (tensorflow/tsl/platform/errors.cc IOError): ENOSPC and
# EDQUOT as RESOURCE_EXHAUSTED, EFBIG as OUT_OF_RANGE ("File too large"), EACCES and EROFS
# as PERMISSION_DENIED / FAILED_PRECONDITION.
_TF_CODES = {"ResourceExhaustedError": errno.ENOSPC, "PermissionDeniedError": errno.EACCES}
_TF_WORDS = {"file too large": errno.EFBIG, "read-only file system": errno.EROFS,
             "no space left": errno.ENOSPC, "disk quota": errno.EDQUOT}


def from_tensorflow(err: BaseException) -> Optional[OSError]:
    """The OSError a tf.errors.OpError from a file write stands for, or None."""
    message = str(getattr(err, "message", "") or err)
    code = next((c for words, c in _TF_WORDS.items() if words in message.lower()),
                _TF_CODES.get(type(err).__name__))
    if code is None or not type(err).__module__.startswith("tensorflow"):
        return None
    filename = message.split(";", 1)[0].strip() if ";" in message else None
    return OSError(code, os.strerror(code), filename)
