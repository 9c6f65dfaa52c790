"""Headless Chromium (Debian's `chromium` package) for looking at a report as a person
would: the DOM after layout, or a PNG. Used by the report tests and `make report-screenshot`."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Optional

NAMES = ("chromium", "chromium-browser", "google-chrome")
# --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-extensions", "--disable-background-networking", "--allow-file-access-from-files")
TIMEOUT = 120


def find() -> Optional[str]:
    return next((path for path in map(shutil.which, NAMES) if path), None)


def _run(args: list) -> subprocess.CompletedProcess:
    binary = find()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install -y chromium)")
    return subprocess.run([binary, *FLAGS, *args], capture_output=True, text=True, timeout=TIMEOUT, check=True)


def dump_dom(html: Path) -> str:
    """The page's DOM as Chromium serializes it once loaded."""
    return _run(["--dump-dom", Path(html).resolve().as_uri()]).stdout


def screenshot(html: Path, png: Path, width: int = 1200, height: int = 2400) -> Path:
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    _run([f"--window-size={width},{height}", f"--screenshot={png}", Path(html).resolve().as_uri()])
    return png
