"""Canary requests (serialized real examples, read by TFX's request_builder) sent over TF
Serving's REST API, so the same check runs against kubetfx's model server or TF Serving in
a cluster."""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request


class CanaryError(RuntimeError):
    """The server did not load the model or did not answer correctly."""


def predict_body(examples: list[bytes], signature: str = "serving_default") -> bytes:
    instances = [{"b64": base64.b64encode(e).decode()} for e in examples]
    return json.dumps({"signature_name": signature, "instances": instances}).encode()


def _http(url: str, body: bytes | None = None, timeout: float = 30) -> dict:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise CanaryError(f"{url} answered HTTP {err.code}: {err.read()[:500].decode(errors='replace')}") from err


def model_status(base_url: str, model_name: str) -> tuple[bool, str]:
    """(available, load error) from TF Serving's model status: available once a version is
    AVAILABLE; the error of a version that ended without loading; (False, "") meanwhile."""
    try:
        status = _http(f"{base_url}/v1/models/{model_name}", timeout=5)
    except (OSError, CanaryError, ValueError):
        return False, ""
    versions = status.get("model_version_status", [])
    if any(v.get("state") == "AVAILABLE" for v in versions):
        return True, ""
    errors = [v.get("status", {}).get("error_message", "") for v in versions if v.get("state") == "END"]
    return False, next((e for e in errors if e), "")


def send_canaries(base_url: str, model_name: str, examples: list[bytes], signature: str = "serving_default") -> list:
    """One predict request with every example; each must get its own prediction."""
    try:
        answer = _http(f"{base_url}/v1/models/{model_name}:predict", predict_body(examples, signature))
    except OSError as err:
        raise CanaryError(f"predict request failed: {err}") from err
    predictions = answer.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != len(examples):
        got = len(predictions) if isinstance(predictions, list) else answer
        raise CanaryError(f"expected {len(examples)} predictions, got {got}")
    return predictions
