"""The model server and what it stands on, below both the InfraValidator (which loads each
candidate in it) and `kubetfx serve`: model_server.py (TF Serving's REST API over a
SavedModel), rest_api.py (the request formats), request_schema.py (requests checked
against the served schema), version_follower.py and valid_version.py (the newest version
that is whole), and http_server.py/batching.py, one transport on tornado shared with the
inference-logging proxy. A staged rollout adds rollout_state.py (`rollout.json`, the
state of one serving directory), traffic_split.py (the sticky weighted rule the server
and the proxy both route by) and tracks.py (stable and candidate loaded side by side)."""
