# Container images. No registry is needed: the base image is built locally (debootstrap),
# every Python package comes from a host-prepared wheelhouse and installs with --no-index.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE_REPO ?= kubetfx
BASE_IMAGE ?= $(IMAGE_REPO)/base:bookworm-py3.11
# The images' build stage: the base plus binutils (strip). With a registry:
# BUILD_IMAGE=python:3.11-bookworm.
BUILD_IMAGE ?= $(IMAGE_REPO)/base-build:bookworm-py3.11
PIPELINE_IMAGE := $(IMAGE_REPO)/pipeline:$(VERSION)
INFRA_IMAGE := $(IMAGE_REPO)/infra-validator:$(VERSION)
DOCKER_BUILD := docker build -q --build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg BUILD_IMAGE=$(BUILD_IMAGE) \
	--build-arg VERSION=$(VERSION)
.PHONY: docker-up base-image wheelhouse image image-sizes

docker-up: ## Install (Debian docker.io) and start the Docker engine if needed
	@components/container/docker-up.sh

base-image: docker-up ## Build the Debian bookworm + Python 3.11 base images locally (debootstrap)
	@components/container/build-base-image.sh $(BASE_IMAGE)
	@components/container/build-base-image.sh $(BUILD_IMAGE) binutils

# uv is pinned in the Makefile, not the lock; the image build installs with it.
wheelhouse/.complete: requirements.lock Makefile components/container/container.mk
	@echo "==> wheelhouse/: one wheel per pin of requirements.lock, plus uv"
	components/container/build-wheelhouse.sh requirements.lock wheelhouse "uv==$(UV_VERSION)"
	@touch $@

wheelhouse-serving/.complete: components/infra_validator/serving-requirements.lock
	@echo "==> wheelhouse-serving/: the model-server environment's wheels"
	components/container/build-wheelhouse.sh components/infra_validator/serving-requirements.lock wheelhouse-serving
	@touch $@

wheelhouse: wheelhouse/.complete wheelhouse-serving/.complete ## Download the wheels the images install from

image: install base-image wheelhouse ## Build the stage images (pipeline suite + infra-validator)
	@echo "==> kubetfx wheel"
	@rm -rf build/wheel && $(UV) build -q --wheel -o build/wheel .
	@echo "==> $(PIPELINE_IMAGE)"
	$(DOCKER_BUILD) -f components/container/Dockerfile -t $(PIPELINE_IMAGE) .
	@echo "==> $(INFRA_IMAGE)"
	$(DOCKER_BUILD) --build-arg PIPELINE_IMAGE=$(PIPELINE_IMAGE) -f components/container/Dockerfile.infra-validator -t $(INFRA_IMAGE) .
	@$(MAKE) --no-print-directory image-sizes

image-sizes: ## Print the sizes of the kubetfx images
	@docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep '^$(IMAGE_REPO)/' | sort
