"""`kubetfx init-module PATH`: writes the module-file template (`module.py` beside this
file), a starting point that trains as it is, so a user's own module begins from code that
meets TFX's contract and kubetfx's gates instead of from a blank file."""
from __future__ import annotations

import argparse
from pathlib import Path

from kubetfx.pipelines import exit_codes
from kubetfx.pipelines.config import ConfigError

TEMPLATE = Path(__file__).resolve().parent / "module.py"
EXAMPLES = """examples:
  kubetfx init-module my_module.py                   # the template, ready to train
  kubetfx run --data trips.csv --label fare --module-file my_module.py
"""


def write(path: Path, force: bool = False) -> Path:
    """The template at `path`; an existing file is kept unless `force` (it may be the
    user's own work)."""
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give the module file's name, e.g. {path / 'my_module.py'}")
    if path.suffix != ".py":
        raise ConfigError(f"{path}: a module file's name ends in .py (TFX imports it as a Python module)")
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; kubetfx keeps it (--force overwrites it)")
    if not path.parent.is_dir():
        raise ConfigError(f"folder {path.parent} does not exist")
    path.write_text(TEMPLATE.read_text())
    return path


def _command(args) -> int:
    path = write(Path(args.path), args.force)
    print(f"wrote {path}; train it with: kubetfx run --module-file {path} (add --data FILE --label COLUMN)")
    return exit_codes.OK


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "init-module", help="write a module file to start from (preprocessing_fn, run_fn)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    parser.add_argument("path", help="the file to write, e.g. my_module.py")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(func=_command)
