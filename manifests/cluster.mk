# The cluster workflow, in order: cluster-up, deploy-kfp, load-images, deploy, submit,
# serve, cluster-down. Needs docker, kind and kubectl on PATH (each target checks).
KIND_CLUSTER := kubetfx
KFP_VERSION := 2.4.0
KFP_MANIFESTS := github.com/kubeflow/pipelines/manifests/kustomize
KFP_HOST ?= http://localhost:8080
MANIFEST_ENTRY_POINTS := manifests/base manifests/overlays/kind manifests/overlays/cloud manifests/overlays/canary
need = @command -v $(1) >/dev/null 2>&1 || { echo "error: '$(1)' is not installed: $(2)" >&2; exit 1; }
.PHONY: cluster-up deploy-kfp load-images deploy submit serve cluster-down manifests-check

cluster-up: ## Create the local kind cluster (manifests/kind/cluster.yaml)
	$(call need,kind,https://kind.sigs.k8s.io/docs/user/quick-start/#installation)
	$(call need,docker,apt-get install docker.io (or Docker Desktop))
	@echo "==> kind create cluster $(KIND_CLUSTER) (ports 8080: KFP, 8501: serving)"
	@mkdir -p .kubetfx
	kind create cluster --config manifests/kind/cluster.yaml --wait 120s

deploy-kfp: ## Install Kubeflow Pipelines $(KFP_VERSION) (upstream platform-agnostic manifests)
	$(call need,kubectl,https://kubernetes.io/docs/tasks/tools/)
	@echo "==> Kubeflow Pipelines $(KFP_VERSION): cluster-scoped resources, then the platform-agnostic env"
	kubectl apply -k "$(KFP_MANIFESTS)/cluster-scoped-resources?ref=$(KFP_VERSION)"
	kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
	kubectl apply -k "$(KFP_MANIFESTS)/env/platform-agnostic?ref=$(KFP_VERSION)"
	kubectl -n kubeflow wait --for=condition=available --timeout=900s deployment --all
	kubectl -n kubeflow patch svc ml-pipeline-ui --type=merge -p '{"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":30080}]}}'
	@echo "KFP UI and API: $(KFP_HOST)"

load-images: ## Load the locally built images into the kind node (no registry needed)
	$(call need,kind,https://kind.sigs.k8s.io/docs/user/quick-start/#installation)
	@echo "==> kind load docker-image $(PIPELINE_IMAGE) $(INFRA_IMAGE)"
	kind load docker-image --name $(KIND_CLUSTER) $(PIPELINE_IMAGE) $(INFRA_IMAGE)

deploy: ## Apply kubetfx's namespace, RBAC, storage, serving and policies (kind overlay)
	$(call need,kubectl,https://kubernetes.io/docs/tasks/tools/)
	@echo "==> kubectl apply -k manifests/overlays/kind"
	kubectl apply -k manifests/overlays/kind

submit: compile ## Upload build/kubetfx-penguin.yaml to KFP and run it, streaming task states
	@echo "==> kubetfx submit --host $(KFP_HOST)"
	$(KUBETFX) submit --host $(KFP_HOST) --spec build/kubetfx-penguin.yaml --wait

serve: ## Port-forward TF Serving and send one prediction
	$(call need,kubectl,https://kubernetes.io/docs/tasks/tools/)
	$(call need,curl,apt-get install curl)
	@echo "==> port-forward svc/serving 8501, then POST /v1/models/kubetfx-penguin:predict"
	@kubectl -n kubetfx port-forward svc/serving 8501:8501 >/dev/null 2>&1 & pf=$$!; sleep 3; \
	  body=$$($(PY) -c 'import base64,json,tensorflow as tf; e=tf.train.Example(); f=e.features.feature; f["island"].bytes_list.value.append(b"Biscoe"); f["bill_length_mm"].float_list.value.append(47.5); f["bill_depth_mm"].float_list.value.append(15.0); f["flipper_length_mm"].int64_list.value.append(218); f["body_mass_g"].int64_list.value.append(5200); print(json.dumps({"instances":[{"b64":base64.b64encode(e.SerializeToString()).decode()}]}))' 2>/dev/null); \
	  curl -sf -X POST localhost:8501/v1/models/kubetfx-penguin:predict -d "$$body"; status=$$?; kill $$pf; exit $$status

cluster-down: ## Delete the kind cluster
	$(call need,kind,https://kind.sigs.k8s.io/docs/user/quick-start/#installation)
	@echo "==> kind delete cluster $(KIND_CLUSTER)"
	kind delete cluster --name $(KIND_CLUSTER)

manifests-check: ## Build every kustomize entry point
	$(call need,kubectl,https://kubernetes.io/docs/tasks/tools/)
	@for entry in $(MANIFEST_ENTRY_POINTS); do echo "==> kubectl kustomize $$entry"; kubectl kustomize $$entry >/dev/null || exit 1; done
