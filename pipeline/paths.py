"""How kiemke writes the paths it records: relative to a folder (the raw-data
folder for the parcels' source files and the ingest cache's entries, the work
directory for its manifest), so that a project folder moved or copied whole (to
another drive letter, to a laptop) is the same project, and a run there redoes nothing."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any


def shown_path(path: str, input_root: Path | None) -> str:
    """A raw file's path (``file.gpkg!layer`` too) under ``input_root`` when it is there."""
    if input_root is None or not Path(path.split("!")[0]).is_absolute():  # shown already
        return path
    root = input_root.resolve().as_posix().rstrip("/") + "/"
    full = Path(path.split("!")[0]).resolve().as_posix() + ("!" + path.split("!", 1)[1] if "!" in path else "")
    return full.removeprefix(root)


def spelled(path: str | Path, base: Path | None) -> str:
    """``path`` relative to the folder ``base`` (``../raw/xa.shp``), or as it
    is when it cannot be (on another drive) or no ``base`` is given."""
    if base is None:
        return str(path)
    try:
        return Path(os.path.relpath(Path(path).absolute(), Path(base).absolute())).as_posix()
    except ValueError:  # another drive, on Windows
        return str(path)


def located(text: str, base: Path) -> Path:
    """The path :func:`spelled` spelled relative to ``base`` (an absolute one as it is)."""
    return Path(os.path.normpath(Path(base) / text))


def spelled_fields(obj: Any, base: Path | None) -> dict[str, Any] | None:
    """A dataclass's fields with its paths spelled relative to ``base`` (the
    ``path`` field even when a pattern: ``*.shp``); None for None."""
    if obj is None:
        return None
    return {k: spelled(v, base) if isinstance(v, Path) or (k == "path" and v) else v for k, v in asdict(obj).items()}
