"""The model server and what it stands on, below both the InfraValidator (which loads each
candidate in it) and `kubetfx serve`: model_server.py (TF Serving's REST API over a
SavedModel), rest_api.py (the request formats), request_schema.py (requests checked
against the served schema), version_follower.py (the newest valid version), and
http_server.py/batching.py, one transport on tornado shared with the inference-logging
proxy."""
