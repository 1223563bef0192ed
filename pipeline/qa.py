"""QA: topology problems of each commune's parcels, located and reported.

Per commune: invalid geometries (repaired at ingest, flagged there),
overlaps between parcels, duplicated geometries, gaps inside the coverage
and against the commune boundary, slivers, parcels crossing the boundary,
and the reconciliation of Σ parcel area with the commune's natural area.
Every problem carries its sheet/parcel numbers and VN-2000 X (northing) /
Y (easting), sorted by size. Outputs: ``qa/<commune>/<layer>.parquet``,
``reports/qa.md``, ``reports/qa.html`` (with overview maps), ``reports/qa.json``.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import crs as vn
from .boundaries import load_boundaries
from .config import WorkDir
from .ingest import INVALID_FLAG
from .io import read_geoparquet, up_to_date, write_geoparquet, write_json, write_text
from .report import markdown_table
from .topology import (
    Thresholds, crossings, gaps, mean_width, overlapping_pairs, parcel_priority, representative_xy,
    resolve_overlaps, slivers,
)

log = logging.getLogger(__name__)

LAYERS = ("invalid", "overlaps", "duplicates", "gaps", "slivers", "crossings")
LAYER_TITLES = {
    "invalid": "Hình học lỗi đã sửa (invalid geometry, repaired)",
    "overlaps": "Chồng đè giữa các thửa (overlaps)",
    "duplicates": "Thửa trùng hình (duplicated geometry)",
    "gaps": "Hở giữa các thửa / với ranh giới xã (gaps)",
    "slivers": "Thửa mảnh, nhỏ (slivers)",
    "crossings": "Thửa vượt ranh giới xã (crossing the commune boundary)",
}
PROBLEM_COLUMNS = ["commune_code", "problem", "parcels", "x_northing", "y_easting", "area_m2", "detail", "geometry"]


@dataclass
class CommuneQA:
    """The QA of one commune: a layer per problem type and the reconciliation."""

    commune_code: str
    layers: dict[str, gpd.GeoDataFrame]
    parcel_count: int
    parcel_area_m2: float
    natural_area_m2: float | None = None
    natural_area_source: str = ""
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: len(layer) for name, layer in self.layers.items()}

    def reconciliation(self) -> dict[str, float | None]:
        """Σ parcels − natural area, and what explains it."""
        overlap = float(self.layers["overlaps"]["area_m2"].sum() + self.layers["duplicates"]["area_m2"].sum())
        gap = float(self.layers["gaps"]["area_m2"].sum())
        outside = float(self.layers["crossings"]["area_m2"].sum())
        out: dict[str, float | None] = {
            "parcel_area_m2": self.parcel_area_m2, "overlap_m2": overlap, "gap_m2": gap, "outside_m2": outside,
            "natural_area_m2": self.natural_area_m2, "difference_m2": None, "difference_pct": None,
            "unexplained_m2": None,
        }
        if self.natural_area_m2:
            diff = self.parcel_area_m2 - self.natural_area_m2
            out["difference_m2"] = diff
            out["difference_pct"] = 100 * diff / self.natural_area_m2
            out["unexplained_m2"] = diff - (overlap + outside - gap)
        return out


def _label(parcels: pd.DataFrame, index: np.ndarray) -> np.ndarray:
    sheet = parcels["sheet_no"].astype("string").fillna("?").to_numpy()[index]
    number = parcels["parcel_no"].astype("string").fillna("?").to_numpy()[index]
    return np.char.add(np.char.add(sheet.astype(str), "/"), number.astype(str))


def _layer(code: str, problem: str, geometry, parcels, area, detail, crs) -> gpd.GeoDataFrame:
    geometry = np.asarray(geometry, dtype=object)
    xy = representative_xy(geometry) if len(geometry) else np.empty((0, 2))
    frame = gpd.GeoDataFrame({
        "commune_code": code, "problem": problem, "parcels": list(parcels),
        "x_northing": np.round(xy[:, 1], 2), "y_easting": np.round(xy[:, 0], 2),
        "area_m2": np.asarray(area, dtype=float), "detail": list(detail),
    }, geometry=list(geometry), crs=crs)
    return frame.sort_values("area_m2", ascending=False, kind="stable").reset_index(drop=True)[PROBLEM_COLUMNS]


def qa_commune(parcels: gpd.GeoDataFrame, *, boundary=None, natural_area_m2: float | None = None,
               thresholds: Thresholds = Thresholds(), commune_code: str = "") -> CommuneQA:
    """Find every topology problem of one commune's parcels (pure: no I/O)."""
    code = commune_code or str(parcels["commune_code"].iloc[0])
    geoms = np.asarray(parcels.geometry.values, dtype=object)
    crs = parcels.crs
    layers: dict[str, gpd.GeoDataFrame] = {}

    flags = parcels["flags"].astype("string").fillna("") if "flags" in parcels else pd.Series([""] * len(parcels))
    bad = np.flatnonzero(flags.str.contains(INVALID_FLAG, regex=False).to_numpy())
    layers["invalid"] = _layer(code, "invalid", geoms[bad], _label(parcels, bad), shapely.area(geoms[bad]),
                               flags.to_numpy()[bad], crs)

    pairs = overlapping_pairs(geoms, thresholds)
    for name, rows in (("overlaps", pairs[~pairs["duplicate"].astype(bool)]),
                       ("duplicates", pairs[pairs["duplicate"].astype(bool)])):
        i, j = rows["i"].to_numpy(int), rows["j"].to_numpy(int)
        labels = np.char.add(np.char.add(_label(parcels, i), " & "), _label(parcels, j))
        detail = [f"parcels {a} and {b} overlap" if name == "overlaps" else f"{a} and {b} are the same shape"
                  for a, b in zip(_label(parcels, i), _label(parcels, j))]
        layers[name] = _layer(code, name, rows["geometry"].to_numpy(), labels, rows["area_m2"], detail, crs)

    # gaps are the same with overlaps resolved, and the coverage union is then fast
    holes = gaps(resolve_overlaps(geoms, pairs, parcel_priority(parcels)), boundary, thresholds)
    layers["gaps"] = _layer(code, "gaps", holes["geometry"].to_numpy(), [""] * len(holes), holes["area_m2"],
                            [f"gap {k} the coverage" if k == "inside" else "commune area covered by no parcel"
                             for k in holes["kind"]], crs)

    thin = slivers(geoms, thresholds)
    width = mean_width(geoms[thin])
    layers["slivers"] = _layer(code, "slivers", geoms[thin], _label(parcels, thin), shapely.area(geoms[thin]),
                               [f"mean width {w:.2f} m" for w in width], crs)

    if boundary is not None:
        cross = crossings(geoms, boundary, thresholds)
        i = cross["i"].to_numpy(int)
        layers["crossings"] = _layer(code, "crossings", cross["geometry"].to_numpy(), _label(parcels, i),
                                     cross["area_m2"], ["part outside the commune boundary"] * len(i), crs)
    else:
        layers["crossings"] = _layer(code, "crossings", [], [], [], [], crs)

    result = CommuneQA(code, layers, len(parcels), float(shapely.area(geoms).sum()), natural_area_m2)
    rec = result.reconciliation()
    if rec["difference_pct"] is not None and abs(rec["difference_pct"]) > thresholds.reconcile_tolerance_pct:
        result.warnings.append(
            f"Σ parcel area differs from the natural area by {rec['difference_m2'] / 1e4:+.4f} ha "
            f"({rec['difference_pct']:+.2f} %, tolerance {thresholds.reconcile_tolerance_pct} %)")
    return result


# ---------------------------------------------------------------------- stage


def qa_to_files(workdir: str, code: str, boundary_wkb: bytes | None, natural: tuple[float | None, str],
                thresholds: Thresholds) -> bool:
    """Task: QA one commune into ``qa/<code>/`` unless current; True if it ran. Runs on a worker."""
    work = WorkDir(workdir)
    path = work.parcels(code)
    outputs = [work.qa_dir / code / f"{name}.parquet" for name in LAYERS] + [work.qa_dir / code / "meta.json"]
    if up_to_date(outputs, [path, work.manifest]):
        return False
    boundary = shapely.from_wkb(boundary_wkb) if boundary_wkb is not None else None
    result = qa_commune(read_geoparquet(path), boundary=boundary, natural_area_m2=natural[0],
                        thresholds=thresholds, commune_code=code)
    for name, layer in result.layers.items():
        write_geoparquet(work.qa_dir / code / f"{name}.parquet", layer)
    write_json(work.qa_dir / code / "meta.json", {
        "parcel_count": result.parcel_count, "parcel_area_m2": result.parcel_area_m2,
        "natural_area_m2": result.natural_area_m2, "natural_area_source": natural[1],
        "warnings": result.warnings})
    return True


def run_qa(workdir: Path, boundaries: Path | None = None, *, progress: bool = True,
           scheduler: str | None = "sync") -> list[CommuneQA]:
    """QA every commune of the work directory (in parallel); write layers and reports."""
    from .parallel import executor

    work = WorkDir(workdir)
    manifest = work.read_manifest()
    meridian = float(manifest["central_meridian_deg"])
    spec = manifest.get("boundaries")
    if boundaries is not None:
        spec = {**(spec or {}), "path": str(boundaries)}
    bounds = load_boundaries(spec, meridian).set_index("commune_code")
    thresholds = Thresholds(**manifest.get("qa", {}))
    natural_ha = manifest.get("natural_area_ha", {})
    tasks = []
    for path in work.parcel_files():
        code = path.stem
        boundary = bounds.geometry.get(code) if code in bounds.index else None
        natural: tuple[float | None, str] = (None, "")
        if code in natural_ha:
            natural = (natural_ha[code] * 1e4, "config [natural_area_ha]")
        elif boundary is not None:
            natural = (float(boundary.area), "boundary file")
        tasks.append((str(work.root), code, shapely.to_wkb(boundary) if boundary is not None else None,
                      natural, thresholds))
    with executor(scheduler) as pmap:
        ran = pmap(qa_to_files, tasks, "qa" if progress else "")
    results = [_read_commune_qa(work, task[1]) for task in tasks]
    if any(ran) or not (work.reports_dir / "qa.md").exists():
        write_qa_reports(results, work, vn.tm3_crs(meridian).name)
    log.info("qa: %d communes (%d checked again), %d problems → %s", len(results), sum(ran),
             sum(sum(r.counts().values()) for r in results), work.reports_dir / "qa.md")
    return results


def _read_commune_qa(work: WorkDir, code: str) -> CommuneQA:
    """A commune's QA as written by an earlier run (its inputs have not changed)."""
    import json

    meta = json.loads((work.qa_dir / code / "meta.json").read_text(encoding="utf-8"))
    layers = {name: read_geoparquet(work.qa_dir / code / f"{name}.parquet") for name in LAYERS}
    return CommuneQA(code, layers, meta["parcel_count"], meta["parcel_area_m2"], meta["natural_area_m2"],
                     meta["natural_area_source"], meta["warnings"])


def read_qa_layer(work: WorkDir, name: str) -> gpd.GeoDataFrame:
    """One QA layer over every commune (for packaging and maps)."""
    parts = [read_geoparquet(p) for p in sorted(work.qa_dir.glob(f"*/{name}.parquet"))]
    return pd.concat(parts, ignore_index=True) if parts else gpd.GeoDataFrame(columns=PROBLEM_COLUMNS)


# -------------------------------------------------------------------- reports


def _summary_rows(results: list[CommuneQA]) -> pd.DataFrame:
    rows = []
    for r in results:
        rec = r.reconciliation()
        rows.append({
            "commune": r.commune_code, "parcels": r.parcel_count, **r.counts(),
            "Σ parcels (ha)": rec["parcel_area_m2"] / 1e4,
            "natural area (ha)": rec["natural_area_m2"] / 1e4 if rec["natural_area_m2"] else float("nan"),
            "difference (ha)": rec["difference_m2"] / 1e4 if rec["difference_m2"] is not None else float("nan"),
            "difference (%)": rec["difference_pct"] if rec["difference_pct"] is not None else float("nan"),
            "unexplained (ha)": rec["unexplained_m2"] / 1e4 if rec["unexplained_m2"] is not None else float("nan"),
        })
    return pd.DataFrame(rows)


def _problem_table(layer: gpd.GeoDataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "sheet/parcel": layer["parcels"], "X (N)": layer["x_northing"], "Y (E)": layer["y_easting"],
        "area (m²)": layer["area_m2"], "detail": layer["detail"],
    })


def _overview_png(result: CommuneQA, parcels: gpd.GeoDataFrame | None) -> str:
    """A small overview map (base64 PNG): parcels in grey, problems in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .map_render import stroke

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=90)
    if parcels is not None:
        stroke(ax, parcels.geometry.values, "#b0b0b0", 0.07)
        x0, y0, x1, y1 = shapely.total_bounds(parcels.geometry.values)
        ax.update_datalim([(x0, y0), (x1, y1)])
    for layer in result.layers.values():
        if len(layer):
            xy = representative_xy(layer.geometry.values)
            ax.scatter(xy[:, 0], xy[:, 1], s=40, facecolors="none", edgecolors="red", linewidths=1.2)
    ax.autoscale()
    ax.set_aspect("equal")
    ax.set_title(f"Xã {result.commune_code}: {sum(result.counts().values())} problems", fontsize=9)
    ax.tick_params(labelsize=6)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def write_qa_reports(results: list[CommuneQA], work: WorkDir, crs_name: str) -> None:
    summary = _summary_rows(results)
    md = [
        "# QA report — topology of the parcels",
        "",
        f"Coordinates: {crs_name}; X = northing, Y = easting (Vietnamese convention). Areas in m².",
        "Overlaps are counted once in the khoanh đất: the parcel with the earlier sheet/parcel number keeps "
        "the shared area.",
        "",
        markdown_table(summary),
        "",
    ]
    doc = [f"<h1>QA report</h1><p>{html.escape(crs_name)}; X = northing, Y = easting.</p>",
           summary.to_html(index=False, float_format=lambda v: f"{v:,.2f}", na_rep="")]
    data = []
    for r in results:
        md += [f"## Xã {r.commune_code}", ""]
        md += [f"- **warning**: {w}" for w in r.warnings]
        rec = r.reconciliation()
        if rec["natural_area_m2"]:
            md.append(f"- natural area {rec['natural_area_m2'] / 1e4:.4f} ha ({r.natural_area_source}); "
                      f"Σ parcels {rec['parcel_area_m2'] / 1e4:.4f} ha; difference {rec['difference_m2'] / 1e4:+.4f} ha "
                      f"= overlaps {rec['overlap_m2'] / 1e4:.4f} + outside {rec['outside_m2'] / 1e4:.4f} "
                      f"− gaps {rec['gap_m2'] / 1e4:.4f} + unexplained {rec['unexplained_m2'] / 1e4:+.4f} ha")
        parcels_path = work.parcels(r.commune_code)
        parcels = read_geoparquet(parcels_path, columns=["geometry"]) if parcels_path.exists() else None
        doc.append(f"<h2>Xã {html.escape(r.commune_code)}</h2>")
        doc += [f"<p><b>warning</b>: {html.escape(w)}</p>" for w in r.warnings]
        doc.append(f'<img alt="overview" src="data:image/png;base64,{_overview_png(r, parcels)}">')
        for name, layer in r.layers.items():
            if layer.empty:
                continue
            table = _problem_table(layer)
            md += ["", f"### {LAYER_TITLES[name]} — {len(layer)}", "", markdown_table(table)]
            doc += [f"<h3>{html.escape(LAYER_TITLES[name])} — {len(layer)}</h3>",
                    table.to_html(index=False, float_format=lambda v: f"{v:,.2f}")]
        md.append("")
        data.append({"commune_code": r.commune_code, "counts": r.counts(), "reconciliation": rec,
                     "natural_area_source": r.natural_area_source, "warnings": r.warnings})
    write_text(work.reports_dir / "qa.md", "\n".join(md))
    write_text(work.reports_dir / "qa.html",
               "<!doctype html><html lang='vi'><meta charset='utf-8'><title>QA</title>"
               "<style>body{font-family:sans-serif}td,th{padding:2px 6px;border:1px solid #ccc}"
               "table{border-collapse:collapse}</style><body>" + "\n".join(doc) + "</body></html>\n")
    write_json(work.reports_dir / "qa.json", data)
