"""Why a stage failed, in a few lines: the exception and the last frames of the code a
person wrote (a module file, kubetfx's stages), not the 40 frames of TFX's launcher.

Works on the traceback text (Python's own format), so the same explanation comes from a
live exception (`kubetfx run`) and from the text TFX keeps on a failed MLMD execution
(`kubetfx report`)."""
from __future__ import annotations

import dataclasses
import os
import re
import sysconfig
import traceback
from pathlib import Path
from typing import Optional

_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$')
_CHAIN = ("\nThe above exception was the direct cause of the following exception:\n",
          "\nDuring handling of the above exception, another exception occurred:\n")
MAX_FRAMES = 3


@dataclasses.dataclass
class Frame:
    file: str
    line: int
    function: str
    code: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} in {self.function}" + (f"\n      {self.code}" if self.code else "")


@dataclasses.dataclass
class Explanation:
    error: str            # "KeyError: 'bill_length'" (the exception's last line(s))
    frames: list          # the last frames of user code, innermost last

    def lines(self) -> list:
        return [self.error] + [f"  {frame}" for frame in self.frames]


def _library_dirs() -> tuple:
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    # kubetfx's pipelines/ (runners, CLI) is plumbing too: stage code lives in components/.
    dirs.add(str(Path(__file__).resolve().parent.parent) + os.sep)
    return tuple(sorted(dirs))


def _is_library(file: str) -> bool:
    return file.startswith(_library_dirs()) or file.startswith("<") or "/site-packages/" in file


def _segments(text: str) -> list:
    """The tracebacks of a chained exception, innermost cause first."""
    parts = [text]
    for marker in _CHAIN:
        parts = [piece for part in parts for piece in part.split(marker)]
    return [p for p in parts if "Traceback (most recent call last):" in p]


def _parse(segment: str, module_files: dict) -> tuple:
    frames, error_lines, lines = [], [], segment.strip("\n").splitlines()
    i = 0
    while i < len(lines):
        match = _FRAME.match(lines[i])
        if match:
            code = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1].startswith("    ") else ""
            file = match["file"]
            if not _is_library(file):
                file = module_files.get(os.path.basename(file), file)
            frames.append(Frame(file, int(match["line"]), match["func"], code))
        i += 1
    # The exception text: what follows the last frame's code line (it may span lines).
    last = max((j for j, line in enumerate(lines) if _FRAME.match(line)), default=0)
    start = last + 2 if last + 1 < len(lines) and lines[last + 1].startswith("    ") else last + 1
    error_lines = [line for line in lines[start:] if not re.match(r"^\s*[~^]+\s*$", line)]
    return frames, "\n".join(error_lines).strip()


def explain_text(text: str, module_files: Optional[dict] = None) -> Explanation:
    """`module_files`: {basename: path the user gave}, to name a module file that TFX ran
    from a temporary copy (its user-code wheel, installed and removed per stage)."""
    module_files = module_files or {}
    segments = _segments(text) or [text]
    frames, error = _parse(segments[-1], module_files)
    ours = [f for f in frames if not _is_library(f.file)]
    for segment in reversed(segments[:-1]):  # a wrapper raised in a library: look at its cause
        if ours:
            break
        cause_frames, _ = _parse(segment, module_files)
        ours = [f for f in cause_frames if not _is_library(f.file)]
    if not ours and frames:
        ours = frames[-1:]  # nothing of ours: where the library raised is still a clue
    error = error or text.strip().splitlines()[-1]
    # "kubetfx.components.example_validator.executor.DataRejectedError: ..." -> "DataRejectedError: ..."
    error = re.sub(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*:)", "", error)
    return Explanation(error=error, frames=ours[-MAX_FRAMES:])


def explain(error: BaseException, module_files: Optional[dict] = None) -> Explanation:
    return explain_text(format_error(error), module_files)


def format_error(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def module_files_of(config) -> dict:
    return {os.path.basename(config.module_file): config.module_file} if getattr(config, "module_file", None) else {}
