# The cluster workflow, in order: cluster-up, deploy-kfp, load-images, deploy, submit,
# serve, cluster-down. Needs docker, kind and kubectl on PATH (each target checks).
# One Kubeflow Pipelines release is pinned: 2.5.0, single-user (platform-agnostic), the
# newest of the versions the local backend emulates (`kubetfx run --engine containers`,
# 2.4.x and 2.5.0). It is also the first with PIPELINE_RUN_AS_USER (Pod Security, see
# manifests/README.md) and it retries failed tasks (Argo retryStrategy, from 2.4.1).
KIND_CLUSTER := kubetfx
KFP_VERSION := 2.5.0
KFP_MANIFESTS := github.com/kubeflow/pipelines/manifests/kustomize
# Where single-user KFP creates run pods, so where kubetfx's overlay puts what they mount.
KFP_NAMESPACE := kubeflow
KFP_HOST ?= http://localhost:8080
OBJECT_STORE_ENDPOINT ?= http://localhost:9000
MANIFEST_ENTRY_POINTS := manifests/base manifests/overlays/kind manifests/overlays/multi-user manifests/overlays/cloud manifests/overlays/rollout
need = @command -v $(1) >/dev/null 2>&1 || { echo "error: '$(1)' is not installed: $(2)" >&2; exit 1; }
# KFP's MinIO keys (the secret its install creates), for the data upload of `submit`.
minio_key = $$(kubectl -n $(KFP_NAMESPACE) get secret mlpipeline-minio-artifact -o jsonpath='{.data.$(1)}' | base64 -d)
.PHONY: cluster-up deploy-kfp load-images deploy submit serve cluster-down manifests-check

cluster-up: ## Create the local kind cluster (manifests/kind/cluster.yaml)
	$(call need,kind,https://kind.sigs.k8s.io/docs/user/quick-start/#installation)
	$(call need,docker,apt-get install docker.io (or Docker Desktop))
	@echo "==> kind create cluster $(KIND_CLUSTER) (host ports 8080: KFP, 9000: MinIO, 8501: serving, through the inference logger)"
	kind create cluster --config manifests/kind/cluster.yaml --wait 120s

deploy-kfp: ## Install Kubeflow Pipelines (KFP_VERSION, 2.5.0), single-user (upstream platform-agnostic manifests)
	$(call need,kubectl,https://kubernetes.io/docs/tasks/tools/)
	@echo "==> Kubeflow Pipelines $(KFP_VERSION): cluster-scoped resources, then the platform-agnostic env"
	kubectl apply -k "$(KFP_MANIFESTS)/cluster-scoped-resources?ref=$(KFP_VERSION)"
	kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
	kubectl apply -k "$(KFP_MANIFESTS)/env/platform-agnostic?ref=$(KFP_VERSION)"
	kubectl -n $(KFP_NAMESPACE) wait --for=condition=available --timeout=900s deployment --all
	@# Strategic merge (ports keyed by port): targetPort 3000 / 9000 stay as installed.
	kubectl -n $(KFP_NAMESPACE) patch svc ml-pipeline-ui -p '{"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":30080}]}}'
	kubectl -n $(KFP_NAMESPACE) patch svc minio-service -p '{"spec":{"type":"NodePort","ports":[{"port":9000,"nodePort":30900}]}}'
	@echo "KFP UI and API: $(KFP_HOST); its MinIO: $(OBJECT_STORE_ENDPOINT)"

load-images: ## Load the locally built images into the kind node (no registry needed)
	$(call need,kind,https://kind.sigs.k8s.io/docs/user/quick-start/#installation)
	@echo "==> kind load docker-image $(PIPELINE_IMAGE) $(INFRA_IMAGE)"
	kind load docker-image --name $(KIND_CLUSTER) $(PIPELINE_IMAGE) $(INFRA_IMAGE)

deploy: ## Apply kubetfx's serving volume, TF Serving, monitor CronJob and policies (overlays/kind, namespace kubeflow)
	$(call need,kubectl,https://kubernetes.io/docs/tasks/tools/)
	@echo "==> kubectl apply -k manifests/overlays/kind"
	kubectl apply -k manifests/overlays/kind

submit: compile ## Upload the data to KFP's MinIO, the spec to KFP, run it and stream task states
	$(call need,kubectl,https://kubernetes.io/docs/tasks/tools/)
	@echo "==> kubetfx submit --host $(KFP_HOST) --object-store-endpoint $(OBJECT_STORE_ENDPOINT)"
	AWS_ACCESS_KEY_ID=$(call minio_key,accesskey) AWS_SECRET_ACCESS_KEY=$(call minio_key,secretkey) \
	  $(KUBETFX) submit --host $(KFP_HOST) --object-store-endpoint $(OBJECT_STORE_ENDPOINT) --spec build/kubetfx-penguin.yaml --wait

serve: ## Send one prediction to TF Serving on the kind node through the inference logger (localhost:8501; logged for the skew monitor)
	$(call need,curl,apt-get install curl)
	@echo "==> POST localhost:8501/v1/models/kubetfx-penguin:predict"
	@body=$$($(PY) -c 'import base64,json,tensorflow as tf; e=tf.train.Example(); f=e.features.feature; f["island"].bytes_list.value.append(b"Biscoe"); f["bill_length_mm"].float_list.value.append(47.5); f["bill_depth_mm"].float_list.value.append(15.0); f["flipper_length_mm"].int64_list.value.append(218); f["body_mass_g"].int64_list.value.append(5200); print(json.dumps({"instances":[{"b64":base64.b64encode(e.SerializeToString()).decode()}]}))' 2>/dev/null); \
	  curl -sf --max-time 30 -X POST localhost:8501/v1/models/kubetfx-penguin:predict -d "$$body"

cluster-down: ## Delete the kind cluster
	$(call need,kind,https://kind.sigs.k8s.io/docs/user/quick-start/#installation)
	@echo "==> kind delete cluster $(KIND_CLUSTER)"
	kind delete cluster --name $(KIND_CLUSTER)

manifests-check: ## Build every kustomize entry point
	$(call need,kubectl,https://kubernetes.io/docs/tasks/tools/)
	@for entry in $(MANIFEST_ENTRY_POINTS); do echo "==> kubectl kustomize $$entry"; kubectl kustomize $$entry >/dev/null || exit 1; done
