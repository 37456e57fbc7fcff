"""Load a user object named ``path/to/file.py:attr`` or ``package.module:attr``."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from optimas_lg.errors import TargetError


def load_target(spec: str) -> Any:
    """Import the module part of ``spec`` and return its attribute (dotted paths allowed)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as with `python -m`: a target may import its own package
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr:
        raise TargetError(f"target {spec!r} must look like 'path/to/file.py:name' or 'package.module:name'")
    if module_part.endswith(".py") or "/" in module_part:
        path = Path(module_part).expanduser().resolve()
        if not path.is_file():
            raise TargetError(f"target {spec!r}: file {path} does not exist")
        # the same name in every process: a resumed job's stored values name types of this module
        name = f"_optimas_target_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:16]}"
        module = sys.modules.get(name)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise TargetError(f"target {spec!r}: cannot import {path}")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module
            try:
                loader_spec.loader.exec_module(module)
            except Exception as exc:
                del sys.modules[name]
                raise TargetError(f"target {spec!r}: importing {path} raised {_where(exc)}"
                                  f"{_package_hint(exc, path)}") from exc
    else:
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as exc:
            raise TargetError(f"target {spec!r}: cannot import module {module_part!r} ({exc})") from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise TargetError(f"target {spec!r}: {module_part} has no attribute {attr!r}") from exc
    return obj


def _where(exc: BaseException) -> str:
    """``Type: message (at file:line)``, the line the error was raised from."""
    frames = traceback.extract_tb(exc.__traceback__)
    at = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{at}"


def _package_hint(exc: BaseException, path: Path) -> str:
    """For a package the file imports that sits in a folder above it: run from that folder."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return ""
    top = exc.name.split(".")[0]
    home = next((p for p in path.parents if (p / top).is_dir()), None)
    return "" if home is None else (f"; {top!r} is a package in {home}: run from that folder "
                                    f"(or add it to PYTHONPATH)")
