"""`kubetfx serve` and `kubetfx inference-logger`: the model server command, the inference log it writes, the logging proxy in front of TF Serving and the shipper of its shards."""
