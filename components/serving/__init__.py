"""What kubetfx's HTTP servers share (the model server, the inference-logging proxy):
http_server.py, one transport on tornado with the bounds a server under load needs."""
