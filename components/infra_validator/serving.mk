# The InfraValidator's model-server environment: KServe + TensorFlow CPU (protobuf 6, so
# apart from .venv). Rebuilt when its lock changes.
SERVING_VENV := .venv-serving
SERVING_LOCK := components/infra_validator/serving-requirements.lock
.PHONY: serving-env
$(SERVING_VENV)/.installed: $(SERVING_LOCK) | $(INSTALLED)
	@echo "==> creating $(SERVING_VENV) (KServe model server for InfraValidator)"
	$(UV) venv $(SERVING_VENV) --python $(PYTHON) --allow-existing -q
	$(UV) pip install --python $(SERVING_VENV)/bin/python --compile-bytecode -r $(SERVING_LOCK)
	@touch $@

serving-env: $(SERVING_VENV)/.installed ## Create .venv-serving, the InfraValidator model server env
