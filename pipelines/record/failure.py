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
    # AutoGraph's converted copy of a tf.function (/tmp/__autograph_generated_file*.py) is
    # nobody's code: the user's line is in the error's "in user code:" block.
    return (file.startswith(_library_dirs()) or file.startswith("<") or "/site-packages/" in file
            or os.path.basename(file).startswith("__autograph_generated_file"))


# A frame inside a TensorFlow error message ("in user code:"), indented 4 spaces, ending in
# "*" when AutoGraph converted the function.
_USER_CODE_FRAME = re.compile(r'^ {4}File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)(?: +\*)?$')


def _user_code_frames(error_lines: list, module_files: dict) -> list:
    """The frames a tf.function's error names in its "in user code:" block, the module
    file's temporary copy named by the user's path."""
    frames = []
    for i, line in enumerate(error_lines):
        match = _USER_CODE_FRAME.match(line)
        if match and not _is_library(match["file"]):
            code = error_lines[i + 1].strip() if i + 1 < len(error_lines) else ""
            frames.append(Frame(_user_path(match["file"], module_files), int(match["line"]), match["func"], code))
    return frames


def _user_path(file: str, module_files: dict) -> str:
    return module_files.get(os.path.basename(file), file)


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
    frames += _user_code_frames(error_lines, module_files)  # innermost: where the graph was built
    error = "\n".join(error_lines).strip()
    for copy in {m["file"] for line in error_lines for m in [_USER_CODE_FRAME.match(line)] if m}:
        error = error.replace(f'"{copy}"', f'"{_user_path(copy, module_files)}"')
    return frames, error


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
