"""Tiny inline geometry for the tests: squares, grids and frames in Lạng Sơn's
VN-2000 / TM-3 107°15′ (EPSG:9215), metres; and what officers do to the outputs
(a note added to a map sheet)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

CRS = "EPSG:9215"
X0, Y0 = 450_000.0, 2_417_000.0  # inside Lạng Sơn
VAN_QUAN = (430_000.0, 2_418_000.0)  # inside Huyện Văn Quan


def box(x0: float, y0: float, x1: float, y1: float, *, origin: tuple[float, float] = (X0, Y0)) -> shapely.Polygon:
    """A rectangle given in metres from ``origin``."""
    ox, oy = origin
    return shapely.box(ox + x0, oy + y0, ox + x1, oy + y1)


def square(x: float = 0.0, y: float = 0.0, size: float = 100.0, *,
           origin: tuple[float, float] = (X0, Y0)) -> shapely.Polygon:
    """A ``size`` m square with its lower-left corner ``(x, y)`` m from ``origin``."""
    return box(x, y, x + size, y + size, origin=origin)


def cell(col: int, row: int, w: float = 100.0, h: float = 100.0) -> shapely.Polygon:
    """The grid cell (``col``, ``row``) of a 100 m grid, ``w`` × ``h`` m."""
    return box(col * 100, row * 100, col * 100 + w, row * 100 + h)


def grid(n: int = 3) -> list[shapely.Polygon]:
    """An ``n`` × ``n`` grid of 100 m cells, row by row."""
    return [cell(c, r) for r in range(n) for c in range(n)]


def source_frame(rows: list[dict], crs: str | None = CRS) -> gpd.GeoDataFrame:
    """A raw source frame (as read, with ``source_fid``) from rows holding a ``geometry``."""
    rows = [dict(r) for r in rows]
    geoms = [r.pop("geometry") for r in rows]
    return gpd.GeoDataFrame(pd.DataFrame(rows).assign(source_fid=range(len(rows))), geometry=geoms, crs=crs)


def parcels(geoms: list, landuse: list | None = None, owner: list | None = None, uses: list | None = None,
            flags: list | None = None, commune_code: str = "06253") -> gpd.GeoDataFrame:
    """Parcels of the contract (one sheet, numbered 1…n) on the given geometries."""
    n = len(geoms)
    return gpd.GeoDataFrame({
        "commune_code": commune_code, "sheet_no": "1", "parcel_no": [str(i + 1) for i in range(n)],
        "landuse": landuse or ["LUC"] * n, "owner_type": owner or ["GDC"] * n,
        "area_m2": shapely.area(np.array(geoms)), "uses": uses or [None] * n, "flags": flags or [None] * n,
    }, geometry=geoms, crs=CRS)


def ingest_messages(work) -> list[str]:
    """Every message ingest wrote to ``reports/ingest.json`` (reasons, repairs, warnings, CRS choices)."""
    import json

    report = json.loads((work / "reports" / "ingest.json").read_text(encoding="utf-8"))
    out = []
    for f in report["files"]:
        out += [f["crs_reason"], *f["repairs"], *f["quarantined_by_reason"], *f["flagged"], *f["warnings"]]
    return [m for m in out if m]


def one_commune_without_boundaries(sample_run, out) -> tuple[str, dict]:
    """A copy of the sample's work directory (ingested, QA'd, khoanh built) at
    ``out`` with one commune and no commune boundaries in its manifest, as a
    run on an export that comes without them; returns the commune's code and
    the manifest."""
    import json
    import shutil

    from pipeline.workdir import WorkDir

    shutil.copytree(sample_run, out, ignore=shutil.ignore_patterns("maps", "forms", "qa", "units_2025", "rasters",
                                                                   "*.gpkg", "*.tif", "*.qgz"))
    work = WorkDir(out)
    keep = work.khoanh_files()[0].stem
    for folder in (work.khoanh_dir, work.parcels_dir):
        for path in folder.glob("*.parquet"):
            if path.stem != keep:
                path.unlink()
    manifest = json.loads(work.manifest.read_text(encoding="utf-8"))
    manifest["boundaries"] = None
    work.manifest.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return keep, manifest


def annotate_pdf(path, note: str) -> None:
    """Add a sticky note to a PDF's first page and save it in place, incrementally, as Acrobat's Ctrl+S does."""
    import pymupdf

    with pymupdf.open(path) as pdf:
        pdf[0].add_text_annot((100, 100), note)
        pdf.saveIncr()


def pdf_notes(path) -> list[str]:
    """The text of the notes on a PDF's first page."""
    import pymupdf

    with pymupdf.open(path) as pdf:
        return [annot.info["content"] for annot in pdf[0].annots()]
