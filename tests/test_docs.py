"""The README stays a door (a few screens) and no document points at a file that is gone:
paths move often here (pipelines/ is being regrouped), and a stale path in the docs is the
first thing a newcomer trips on. Also `kubetfx --help`, the other front door, is never cut."""
from __future__ import annotations

import re
import subprocess

import pytest
from conftest import REPO

from kubetfx.pipelines import cli

README_MAX_LINES = 300
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
# A backtick span that names a repository path: its first segment is a top-level entry of
# the repository, or it has a folder and ends like a source file. Run-home paths
# (.kubetfx/...), outputs (build/...), in-container paths (/minio/...), URIs and
# placeholders (<name>) are not files of the repository.
TOP_LEVEL = {line.split("/", 1)[0] for line in subprocess.run(
    ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()} | {"docs"}
SKIP = re.compile(r"://|[<>*$~{}]|^\.kubetfx|^build/|^/|^\.\.?$")


def _repo_paths(doc):
    """(path named, path it must be at) for each backtick span and relative link in `doc`."""
    text = doc.read_text()
    prose = FENCE.sub("", text)
    for span in re.findall(r"`([^`\n]+)`", prose):
        token = span.strip().rstrip(".,:;")
        if " " in token or SKIP.search(token):
            continue
        first = token.split("/", 1)[0]
        if first in TOP_LEVEL or ("/" in token and token.endswith((".py", ".md", ".yaml", ".mk"))):
            yield token, REPO / token
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        target = target.split("#", 1)[0]
        if target and not SKIP.search(target):
            yield target, (doc.parent / target)


def _slug(heading):
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(REPO)) for d in DOCS])
def test_every_anchor_a_document_links_exists(doc):
    broken = []
    for target in re.findall(r"\]\(([^)\s]*#[^)\s]+)\)", doc.read_text()):
        path, anchor = target.split("#", 1)
        linked = (doc.parent / path) if path else doc
        if SKIP.search(path) or not linked.exists():
            continue
        headings = re.findall(r"^#+ (.+)$", FENCE.sub("", linked.read_text()), re.M)
        if anchor not in {_slug(h) for h in headings}:
            broken.append(target)
    assert not broken, f"{doc.relative_to(REPO)} links headings that do not exist: {broken}"


def test_readme_fits_on_a_few_screens():
    lines = len((REPO / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move details to docs/"


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(REPO)) for d in DOCS])
def test_every_path_a_document_names_exists(doc):
    missing = sorted({named for named, path in _repo_paths(doc) if not path.exists()})
    assert not missing, f"{doc.relative_to(REPO)} names paths that do not exist: {missing}"


def test_the_path_check_sees_paths():
    # Guards the check itself: if the patterns stopped matching, every document would pass.
    named = {n for n, _ in _repo_paths(REPO / "README.md")}
    assert {"components/README.md", "pipelines/pipeline.py"} <= named, sorted(named)


def test_readme_links_every_doc():
    readme = (REPO / "README.md").read_text()
    unlinked = [d.name for d in DOCS[1:] if f"(docs/{d.name})" not in readme]
    assert not unlinked, f"docs not linked from README.md: {unlinked}"


def _make_targets():
    makefiles = [REPO / "Makefile"]
    makefiles += [REPO / m for m in re.findall(r"^-?include (\S+)", makefiles[0].read_text(), re.M)]
    return {t for m in makefiles for t in re.findall(r"^([a-zA-Z][\w-]*):", m.read_text(), re.M)}


def test_every_make_target_the_readme_names_exists():
    text = (REPO / "README.md").read_text()
    named = set()
    for command in re.findall(r"(?:^|`)make ([a-z][\w\- ]*)", text, re.M):
        named |= {w for w in command.split() if re.fullmatch(r"[a-z][\w-]*", w)}
    missing = named - _make_targets()
    assert named and not missing, f"README names make targets that do not exist: {sorted(missing)}"


def test_every_kubetfx_command_the_readme_names_exists():
    commands = next(a for a in cli.build_parser()._actions if a.dest == "command").choices
    named = set(re.findall(r"(?:`|bin/)kubetfx ([a-z][a-z-]+)", (REPO / "README.md").read_text()))
    missing = {n for n in named if n not in commands}
    assert named and not missing, f"README names kubetfx commands that do not exist: {sorted(missing)}"


def test_kubetfx_help_is_never_cut(run_kubetfx):
    result = run_kubetfx("--help")
    assert result.returncode == 0, result.stderr
    description = result.stdout.split("\n\n")[1]
    assert " ".join(description.split()).endswith("."), f"kubetfx --help description cut: {description!r}"
    flat = " ".join(result.stdout.split())
    for text in (cli.DESCRIPTION, cli.EPILOG):
        assert " ".join(text.split()) in flat
        assert text.rstrip().endswith("."), text
