#!/usr/bin/env bash
# Makes a Docker engine answer: installs Debian's docker.io when missing, starts dockerd
# when it is not running, waits for it. Idempotent. (debootstrap, for a base image built
# without a registry, is installed by base-image.sh when that path is taken.)
set -euo pipefail

if docker info >/dev/null 2>&1; then
  echo "docker-up: engine already answering"
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "docker-up: dockerd missing; as root run: apt-get install -y docker.io" >&2
    exit 1
  fi
  echo "docker-up: installing docker.io (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if ! pgrep -x dockerd >/dev/null; then
  echo "docker-up: starting dockerd (log: /var/log/kubetfx-dockerd.log)"
  nohup dockerd >/var/log/kubetfx-dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "docker-up: engine ready ($(docker version --format '{{.Server.Version}}'))"
    exit 0
  fi
  sleep 1
done
echo "docker-up: dockerd did not answer within 60 s; see /var/log/kubetfx-dockerd.log" >&2
tail -20 /var/log/kubetfx-dockerd.log >&2 || true
exit 1
