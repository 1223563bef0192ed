"""What the map sheets keep between runs, under ``cache/`` by kiemke's
version: each commune's khoanh as a district or province sheet draws them
(generalised), and each such sheet's boundary lines, so that a sheet redrawn
after one commune changed redoes that commune's part only."""

from __future__ import annotations

import hashlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from ..io import atomic_path, forget_versions_beside, read_geoparquet, up_to_date, write_geoparquet
from ..workdir import WorkDir
from .generalise import generalise
from .linework import boundary_lines


def forget_other_versions(work: WorkDir) -> list[Path]:
    """Remove the generalised khoanh and boundary lines an earlier (or later)
    kiemke kept. Returns the folders removed."""
    return forget_versions_beside(work.generalised_dir) + forget_versions_beside(work.linework_dir)


def kept_boundary_lines(work: WorkDir, sheet: str, polygons: dict[str, np.ndarray]) -> dict[str, object]:
    """The sheet's boundary lines (:func:`.linework.boundary_lines`), kept
    until its boundaries change: on a province sheet, seconds of unions and
    buffers that one commune's new land use does not change."""
    digest = hashlib.sha1()
    for level, shapes in polygons.items():
        digest.update(level.encode())
        digest.update(b"".join(shapely.to_wkb(np.asarray(shapes, dtype=object)).tolist()))
    key, path = digest.hexdigest().encode(), work.linework(sheet)
    if path.exists():
        table = pq.read_table(path)
        if (table.schema.metadata or {}).get(b"boundaries") == key:
            shapes = shapely.from_wkb(table["wkb"].to_numpy(zero_copy_only=False))
            return dict(zip(table["level"].to_pylist(), shapes, strict=True))
    lines = boundary_lines(polygons)
    shapes = np.empty(len(lines), dtype=object)
    shapes[:] = list(lines.values())
    table = pa.table({"level": list(lines), "wkb": pa.array(shapely.to_wkb(shapes).tolist(), pa.binary())})
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata({"boundaries": key}), tmp)
    return lines


def generalised(work: WorkDir, khoanh: gpd.GeoDataFrame, scale: int) -> tuple[gpd.GeoDataFrame, int]:
    """``khoanh`` as a district or province sheet at 1:``scale`` draws them,
    and how many were merged away: generalised commune by commune (no khoanh
    joins one across the commune boundary the sheet draws), each commune's
    result kept until its khoanh change, so that a sheet redrawn for one
    changed commune generalises that commune only."""
    parts = []
    for code, mine in khoanh.groupby("commune_code", sort=False, dropna=False):
        cached, source = work.generalised(str(code), scale), work.khoanh(str(code))
        if source.exists() and up_to_date([cached], [source]):
            parts.append(read_geoparquet(cached))
            continue
        drawn, _ = generalise(mine, scale)
        parts.append(drawn)
        write_geoparquet(cached, drawn)
    if not parts:
        return khoanh, 0
    drawn = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=khoanh.crs)
    return drawn, len(khoanh) - len(drawn)
