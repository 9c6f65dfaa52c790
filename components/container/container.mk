# Container images. No registry is needed: the base image is the official python image when
# one can be pulled, else built here (debootstrap); every Python package comes from a
# host-prepared wheelhouse and installs with --no-index.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE_REPO ?= kubetfx
BASE_IMAGE ?= $(IMAGE_REPO)/base:bookworm-py3.11
# The images' build stage: the base plus binutils (strip).
BUILD_IMAGE ?= $(IMAGE_REPO)/base-build:bookworm-py3.11
PIPELINE_IMAGE := $(IMAGE_REPO)/pipeline:$(VERSION)
# The InfraValidator's model server runs on the pipeline environment's TensorFlow, so its
# image is the pipeline image under the name the compiled spec gives that stage.
INFRA_IMAGE := $(IMAGE_REPO)/infra-validator:$(VERSION)
DOCKER_BUILD := docker build -q --build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg BUILD_IMAGE=$(BUILD_IMAGE) \
	--build-arg VERSION=$(VERSION)
.PHONY: docker-up base-image wheelhouse image image-sizes

docker-up: ## Install (Debian docker.io) and start the Docker engine if needed
	@components/container/docker-up.sh

base-image: docker-up ## The base images: python:3.11-slim-bookworm if it can be pulled, else debootstrap
	@components/container/base-image.sh $(BASE_IMAGE) $(BUILD_IMAGE)

# uv is pinned in the Makefile, not the lock; the image build installs with it.
wheelhouse/.complete: requirements.lock Makefile components/container/container.mk
	@echo "==> wheelhouse/: one wheel per pin of requirements.lock, plus uv"
	components/container/build-wheelhouse.sh requirements.lock wheelhouse "uv==$(UV_VERSION)"
	@touch $@

wheelhouse: wheelhouse/.complete ## Download the wheels the images install from

image: install base-image wheelhouse ## Build the stage image (pipeline; infra-validator is a tag of it)
	@echo "==> kubetfx wheel"
	@rm -rf build/wheel && $(UV) build -q --wheel -o build/wheel .
	@echo "==> $(PIPELINE_IMAGE)"
	$(DOCKER_BUILD) -f components/container/Dockerfile -t $(PIPELINE_IMAGE) .
	docker tag $(PIPELINE_IMAGE) $(INFRA_IMAGE)
	@$(MAKE) --no-print-directory image-sizes

image-sizes: ## Print the sizes of the kubetfx images
	@docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}\t{{.ID}}' | grep '^$(IMAGE_REPO)/' | sort
