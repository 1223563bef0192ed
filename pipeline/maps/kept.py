"""What the map sheets keep between runs, under ``cache/`` by kiemke's
build: each commune's khoanh as a district or province sheet draws them
(generalised), and each such sheet's boundary lines, so that a sheet redrawn
after one commune changed redoes that commune's part only."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from ..io import (
    atomic_path,
    forget_versions_beside,
    read_geoparquet,
    read_geoparquets,
    read_parquet_table,
    up_to_date,
    write_geoparquet,
)
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
    return _kept_shapes(work.linework(sheet), polygons, lambda: boundary_lines(polygons))


def kept_union(work: WorkDir, sheet: str, polygons: np.ndarray) -> object:
    """The union of the sheet's communes (its outline), kept as its boundary
    lines are: 0.6 s of a province sheet's union of 200 communes."""
    return _kept_shapes(work.linework(f"{sheet}.outline"), {"": polygons},
                        lambda: {"": shapely.union_all(polygons)})[""]


def _kept_shapes(path: Path, polygons: dict[str, np.ndarray],
                 make: Callable[[], dict[str, object]]) -> dict[str, object]:
    """Shapes by name made from ``polygons`` by ``make``, read from ``path``
    when it was written from the same polygons (the SHA-1 of their WKB)."""
    digest = hashlib.sha1()
    for level, shapes in polygons.items():
        digest.update(level.encode())
        digest.update(b"".join(shapely.to_wkb(np.asarray(shapes, dtype=object)).tolist()))
    key = digest.hexdigest().encode()
    if path.exists():
        table = read_parquet_table(path)
        if (table.schema.metadata or {}).get(b"boundaries") == key:
            shapes = shapely.from_wkb(table["wkb"].to_numpy(zero_copy_only=False))
            return dict(zip(table["level"].to_pylist(), shapes, strict=True))
    made = make()
    shapes = np.empty(len(made), dtype=object)
    shapes[:] = list(made.values())
    table = pa.table({"level": list(made), "wkb": pa.array(shapely.to_wkb(shapes).tolist(), pa.binary())})
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata({"boundaries": key}), tmp)
    return made


def generalised(work: WorkDir, codes: list[str], scale: int) -> gpd.GeoDataFrame:
    """The khoanh of the communes ``codes`` as a district or province sheet at
    1:``scale`` draws them: generalised commune by commune (no khoanh joins
    one across the commune boundary the sheet draws), each commune's result
    kept until its khoanh change, so that a sheet redrawn for one changed
    commune reads and generalises that commune's khoanh only."""
    current = [c for c in codes if up_to_date([work.generalised(c, scale)], [work.khoanh(c)])]
    kept: dict[str, gpd.GeoDataFrame] = {}
    if current:  # read as one table: 200 files one by one cost 1.3 s, together 0.5 s
        kept = dict(iter(read_geoparquets([work.generalised(c, scale) for c in current]).groupby("commune_code")))
    parts = []
    for code in codes:
        if code not in kept and code not in current:
            kept[code], _ = generalise(read_geoparquet(work.khoanh(code)), scale)
            write_geoparquet(work.generalised(code, scale), kept[code])
        if code in kept:  # (none kept for a commune without khoanh)
            parts.append(kept[code])
    if not parts:
        return read_geoparquets([work.khoanh(c) for c in codes])
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=parts[0].crs)
