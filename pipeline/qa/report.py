"""The QA reports: ``reports/qa.md``, ``qa.html`` (with an overview map per
commune) and ``qa.json``."""

from __future__ import annotations

import base64
import html
import io

import geopandas as gpd
import matplotlib.pyplot as plt
import pandas as pd
import shapely

from ..drawing import stroke
from ..io import read_geoparquet, write_json, write_text
from ..report import markdown_table
from ..topology import representative_xy
from ..workdir import WorkDir
from .core import LAYER_TITLES, CommuneQA


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
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=90)
    if parcels is not None and len(parcels):
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
                      f"Σ parcels {rec['parcel_area_m2'] / 1e4:.4f} ha; "
                      f"difference {rec['difference_m2'] / 1e4:+.4f} ha "
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
    write_text(work.report("qa.md"), "\n".join(md))
    write_text(work.report("qa.html"),
               "<!doctype html><html lang='vi'><meta charset='utf-8'><title>QA</title>"
               "<style>body{font-family:sans-serif}td,th{padding:2px 6px;border:1px solid #ccc}"
               "table{border-collapse:collapse}</style><body>" + "\n".join(doc) + "</body></html>\n")
    write_json(work.report("qa.json"), data)
