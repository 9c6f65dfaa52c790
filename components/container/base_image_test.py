"""base-image.sh's choice: the official python image when it can be pulled in time, else a
debootstrap build, installing debootstrap when it is missing. Run against a stand-in
`docker` (and `debootstrap`, `apt-get`) on PATH that records each call: no registry is
reachable here, and the real fallback runs in `make image`."""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().with_name("base-image.sh")

# Images "exist" as files under $STATE; `docker pull` behaves as $PULL says (ok|fail|hang).
FAKE_DOCKER = r"""#!/bin/bash
echo "docker $*" >> "$STATE/calls"
key() { echo "$1" | tr '/:' '__'; }
case "$1 $2" in
  "image inspect") test -e "$STATE/$(key "$3")" ;;
  "image ls") echo "${3}" ;;
  "pull -q") case "$PULL" in ok) touch "$STATE/$(key "$3")" ;; hang) sleep 30 ;; *) exit 1 ;; esac ;;
  tag*) test -e "$STATE/$(key "$2")" && touch "$STATE/$(key "$3")" ;;
  import*) cat >/dev/null; for a in "$@"; do last="$a"; done; touch "$STATE/$(key "$last")" ;;
  *) exit 2 ;;
esac
"""
FAKE_DEBOOTSTRAP = """#!/bin/bash
echo "debootstrap $*" >> "$STATE/calls"
mkdir -p "${@: -2:1}/usr/bin"
"""
# Root's path when debootstrap is missing: apt-get "installs" it into the fake bin.
FAKE_APT_GET = f"""#!/bin/bash
echo "apt-get $*" >> "$STATE/calls"
if [[ "$*" == *install* ]]; then
  cat > "$BIN/debootstrap" <<'INNER'
{FAKE_DEBOOTSTRAP}INNER
  chmod +x "$BIN/debootstrap"
fi
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _run(tmp_path, pull: str, with_debootstrap: bool = True, existing=()):
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    _executable(bin_dir / "docker", FAKE_DOCKER)
    _executable(bin_dir / "apt-get", FAKE_APT_GET)
    if with_debootstrap:
        _executable(bin_dir / "debootstrap", FAKE_DEBOOTSTRAP)
    for image in existing:
        (state / image.replace("/", "_").replace(":", "_")).touch()
    # No sbin directories: the machine's own debootstrap (/usr/sbin) stays out of sight.
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STATE": str(state), "BIN": str(bin_dir), "PULL": pull,
           "PULL_TIMEOUT": "2", "TMPDIR": str(tmp_path)}
    result = subprocess.run(["bash", str(SCRIPT), "r/base:b", "r/build:b"], capture_output=True, text=True,
                            env=env, timeout=120)
    calls = (state / "calls").read_text().splitlines() if (state / "calls").exists() else []
    return result, calls


def test_official_images_are_used_when_they_can_be_pulled(tmp_path):
    result, calls = _run(tmp_path, pull="ok")
    assert result.returncode == 0, result.stderr
    assert "docker tag python:3.11-slim-bookworm r/base:b" in calls
    assert "docker tag python:3.11-bookworm r/build:b" in calls
    assert not any(c.startswith("debootstrap") for c in calls)


@pytest.mark.parametrize("pull", ["fail", "hang"])
def test_debootstrap_builds_them_when_the_registry_fails_or_hangs(tmp_path, pull):
    result, calls = _run(tmp_path, pull=pull)
    assert result.returncode == 0, result.stderr
    assert "cannot be pulled within 2 s" in result.stdout
    boots = [c for c in calls if c.startswith("debootstrap")]
    assert len(boots) == 2 and "binutils" not in boots[0] and ",binutils " in boots[1]
    assert any(c.startswith("docker import") and c.endswith("r/base:b") for c in calls)
    assert any(c.startswith("docker import") and c.endswith("r/build:b") for c in calls)
    assert not any(c.startswith("docker tag") for c in calls)


def test_a_missing_debootstrap_is_installed_even_when_docker_already_answers(tmp_path):
    result, calls = _run(tmp_path, pull="fail", with_debootstrap=False)
    if os.geteuid() != 0:
        assert result.returncode == 1 and "apt-get install -y debootstrap" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    assert any(c.startswith("apt-get") and "debootstrap" in c for c in calls)
    assert len([c for c in calls if c.startswith("debootstrap")]) == 2


def test_existing_images_are_kept(tmp_path):
    result, calls = _run(tmp_path, pull="fail", existing=("r/base:b", "r/build:b"))
    assert result.returncode == 0 and "exist" in result.stdout
    assert not any(c.startswith(("docker pull", "debootstrap", "docker tag")) for c in calls)
