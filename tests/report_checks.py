"""Looking at a rendered report: which sections, banners and drawn chart elements Chromium's
DOM holds, and how much of the screenshot is painted in the chart colours."""
from __future__ import annotations

import os
import subprocess
from html.parser import HTMLParser

import pytest

from kubetfx.pipelines.report import browser


def chromium() -> str:
    """Chromium's path; installed here when missing and root (as in CI), else a skip."""
    found = browser.find()
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip("chromium is not installed and this is not root: `apt-get install -y chromium` "
                    "(or `make test` as root) to run the report's browser tests")
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, timeout=900,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, capture_output=True)
    return browser.find()


class Dom(HTMLParser):
    """Section ids, banner text, and the SVG shapes with a positive drawn size."""

    def __init__(self, html: str):
        super().__init__()
        self.sections, self.charts, self.shapes, self.banner, self.text = [], 0, 0, "", []
        self._in_banner = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "svg" and "chart" in a.get("class", "") and "empty" not in a.get("class", ""):
            self.charts += 1
        if tag == "rect" and float(a.get("width", 0)) > 0 and float(a.get("height", 0)) > 0:
            self.shapes += 1
        if tag == "div" and "banner" in a.get("class", "").split():
            self._in_banner = 1
        elif self._in_banner and tag == "div":
            self._in_banner += 1

    def handle_endtag(self, tag):
        if tag == "div" and self._in_banner:
            self._in_banner -= 1

    def handle_data(self, data):
        self.text.append(data)
        if self._in_banner:
            self.banner += data

    @property
    def all_text(self) -> str:
        return " ".join(self.text)


def painted(png, rgb, tolerance: int = 40) -> int:
    """Pixels of the screenshot within `tolerance` of the colour (bars are drawn in it)."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    return int((np.abs(pixels - np.array(rgb, dtype=np.int16)) <= tolerance).all(axis=-1).sum())
