"""`kubetfx monitor`: drift and skew of new data or logged requests against what the served model was trained on."""
