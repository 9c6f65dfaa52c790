# The local S3-protocol object store (moto server mode) of the local KFP backend and the
# submit tests, in its own environment: .venv-objectstore. Rebuilt when its lock changes.
OBJECT_STORE_VENV := .venv-objectstore
OBJECT_STORE_LOCK := pipelines/kubeflow/object-store-requirements.lock
.PHONY: object-store-env
$(OBJECT_STORE_VENV)/.installed: $(OBJECT_STORE_LOCK) | $(INSTALLED)
	@echo "==> creating $(OBJECT_STORE_VENV) (moto S3 server for the local KFP backend)"
	$(UV) venv $(OBJECT_STORE_VENV) --python $(PYTHON) --allow-existing -q
	$(UV) pip install --python $(OBJECT_STORE_VENV)/bin/python -q -r $(OBJECT_STORE_LOCK)
	@touch $@

object-store-env: $(OBJECT_STORE_VENV)/.installed ## Create .venv-objectstore, the local S3 object store
