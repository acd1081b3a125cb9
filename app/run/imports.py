"""Users' own modules, imported before the configs that name what they register are checked.

An item is a module name, or a .py file by path relative to a base folder (a run config's
folder); module names are looked up in that folder first. A file is imported once per
process, under a name made from its path, so importing it for a second config repeats no
registration. Whatever goes wrong while importing is one line naming the item.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Iterator


def import_module(item: str, base: Path = Path(".")) -> ModuleType:
    if item.endswith(".py") or "/" in item or "\\" in item:
        return _import_file(item, (base / item).resolve())
    try:
        with _searching(base):
            return importlib.import_module(item)
    except Exception as e:
        raise ValueError(_line(item, e)) from None


def _import_file(item: str, file: Path) -> ModuleType:
    if not file.is_file():
        raise ValueError(f"{item}: no such file ({file})")
    name = f"ponder_user_{file.stem}_{hashlib.blake2b(str(file).encode(), digest_size=4).hexdigest()}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ValueError(f"{item}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: dataclasses and pydantic look their module up
    try:
        with _searching(file.parent):  # its sibling modules import too
            spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise ValueError(_line(item, e)) from None
    return module


@contextmanager
def _searching(folder: Path) -> Iterator[None]:
    path = str(folder.resolve())
    sys.path.insert(0, path)
    try:
        yield
    finally:
        sys.path.remove(path)


def _line(item: str, error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{item}: {type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
