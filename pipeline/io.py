"""Atomic writes: every output goes to a temporary file, then is renamed.

A run killed in the middle of a write leaves the previous file (or none),
never a half-written one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    """CSV in UTF-8 with a BOM, so Excel on a Vietnamese Windows shows diacritics."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\n")
    return path


def write_geoparquet(path: Path, frame: gpd.GeoDataFrame) -> Path:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False, compression="zstd", write_covering_bbox=False)
    return path


def read_geoparquet(path: Path, columns: list[str] | None = None) -> gpd.GeoDataFrame:
    return gpd.read_parquet(path, columns=columns)
