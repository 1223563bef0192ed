"""The QA reports, in Vietnamese: ``reports/qa.md``, ``qa.html`` (with an
overview map per commune whose numbered markers are the rows of its tables)
and ``qa.json`` (machine)."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import matplotlib.pyplot as plt
import pandas as pd
import shapely

from ..drawing import stroke
from ..io import write_json, write_text
from ..report import markdown_table, signed, vn_number
from ..topology import representative_xy
from ..workdir import WorkDir
from .core import LAYER_TITLES, CommuneQA

#: Markers numbered on the overview map (more would hide the commune).
NUMBERED = 60
#: Where the natural area of a commune came from, in the officer's words.
NATURAL_SOURCE_VI = {"boundary": "theo ranh giới xã", "config": "theo cấu hình [natural_area_ha]"}


def _summary_row(r: CommuneQA, title: str) -> dict:
    rec = r.reconciliation()
    counts = r.counts()
    known = rec["natural_area_m2"] is not None
    return {
        "Đơn vị hành chính (mã)": title, "Số thửa": r.parcel_count,
        **{LAYER_TITLES[name]: counts[name] for name in LAYER_TITLES},
        "Tổng diện tích các thửa (ha)": rec["parcel_area_m2"] / 1e4,
        "Diện tích tự nhiên theo ranh giới (ha)": rec["natural_area_m2"] / 1e4 if known else float("nan"),
        "Chênh lệch (ha)": rec["difference_m2"] / 1e4 if known else float("nan"),
        "Chênh lệch (%)": rec["difference_pct"] if known else float("nan"),
        "Chưa giải thích được (ha)": rec["unexplained_m2"] / 1e4 if known else float("nan"),
    }


def _problem_table(layer: gpd.GeoDataFrame, first: int) -> pd.DataFrame:
    return pd.DataFrame({
        "Số": range(first, first + len(layer)), "Tờ/thửa": layer["parcels"],
        "X (bắc)": layer["x_northing"], "Y (đông)": layer["y_easting"],
        "Diện tích (m²)": layer["area_m2"], "Mô tả": layer["detail"],
    })


def overview_png(result: CommuneQA, parcels: gpd.GeoDataFrame | None, title: str) -> bytes:
    """A small overview map (PNG): parcels in grey, problems as red circles
    numbered like the rows of the tables below it."""
    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=100)
    if parcels is not None and len(parcels):
        stroke(ax, parcels.geometry.values, "#b0b0b0", 0.07)
        x0, y0, x1, y1 = shapely.total_bounds(parcels.geometry.values)
        ax.update_datalim([(x0, y0), (x1, y1)])
    number = 1
    for layer in result.layers.values():
        if not len(layer):
            continue
        xy = representative_xy(layer.geometry.values)
        ax.scatter(xy[:, 0], xy[:, 1], s=40, facecolors="none", edgecolors="red", linewidths=1.2)
        for x, y in xy:
            if number <= NUMBERED:
                ax.annotate(str(number), (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7,
                            color="#b00000")
            number += 1
    ax.autoscale()
    ax.set_aspect("equal")
    ax.set_axis_off()  # VN-2000 coordinates of each problem are in the tables
    # placed as Axes.set_title places it (6 pt above the frame), without the tick
    # layout set_title runs to avoid the ticks: 70 ms of a 150 ms overview
    ax.annotate(f"{title}: {sum(result.counts().values())} lỗi", (0.5, 1.0), xycoords="axes fraction",
                xytext=(0, 6), textcoords="offset points", ha="center", va="baseline", fontsize=9)
    buffer = io.BytesIO()
    # zlib level 1: 7 ms, not 14, and a smaller file for these flat colours
    fig.savefig(buffer, format="png", bbox_inches="tight", pil_kwargs={"compress_level": 1})
    plt.close(fig)
    return buffer.getvalue()


def overview_path(work: WorkDir, code: str) -> Path:
    """Where the QA task keeps a commune's overview map (drawn on the worker, with its QA)."""
    return work.qa_dir / code / "overview.png"


def _reconciliation_line(r: CommuneQA) -> str | None:
    rec = r.reconciliation()
    if not rec["natural_area_m2"]:
        return None

    def ha(m2: float) -> str:
        return vn_number(m2 / 1e4, 4)

    source = NATURAL_SOURCE_VI.get(r.natural_area_source, r.natural_area_source)
    return (f"Diện tích tự nhiên {ha(rec['natural_area_m2'])} ha ({source}); tổng diện tích các thửa "
            f"{ha(rec['parcel_area_m2'])} ha; chênh lệch {signed(rec['difference_m2'] / 1e4, 4)} ha = chồng đè "
            f"{ha(rec['overlap_m2'])} + ngoài ranh giới {ha(rec['outside_m2'])} − khoảng hở {ha(rec['gap_m2'])} "
            f"+ chưa giải thích được {signed(rec['unexplained_m2'] / 1e4, 4)} ha")


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: vn_number(v), na_rep="")


@dataclass(frozen=True)
class QASection:
    """A commune's part of the QA reports, made by its QA task: its summary
    row, its Markdown and HTML (the overview map is embedded when the report
    is assembled) and its ``qa.json`` entry."""

    commune_code: str
    summary: dict
    markdown: list[str]
    html: list[str]
    data: dict

    @property
    def problems(self) -> int:
        return sum(self.data["counts"].values())

    @property
    def title(self) -> str:
        return self.markdown[0].removeprefix("## ")

    @classmethod
    def of(cls, r: CommuneQA, title: str) -> QASection:
        md = [f"## {title}", "", *(f"- **Cảnh báo**: {w}" for w in r.warnings)]
        doc = [f"<h2>{html.escape(title)}</h2>", *(f"<p><b>Cảnh báo</b>: {html.escape(w)}</p>" for w in r.warnings)]
        line = _reconciliation_line(r)
        md += [f"- {line}"] if line else []
        doc += [f"<p>{html.escape(line)}</p>"] if line else []
        tables: list[str] = []
        first = 1
        for name, layer in r.layers.items():
            if layer.empty:
                continue
            table = _problem_table(layer, first)
            first += len(layer)
            md += ["", f"### {LAYER_TITLES[name]} — {len(layer)}", "", markdown_table(table)]
            tables += [f"<h3>{html.escape(LAYER_TITLES[name])} — {len(layer)}</h3>", _html_table(table)]
        md.append("")
        data = {"commune_code": r.commune_code, "counts": r.counts(), "reconciliation": r.reconciliation(),
                "natural_area_source": r.natural_area_source, "warnings": r.warnings}
        return cls(r.commune_code, _summary_row(r, title), md, [*doc, MAP, *tables], data)

    def to_json(self) -> dict:
        return {"commune_code": self.commune_code, "summary": self.summary, "markdown": self.markdown,
                "html": self.html, "data": self.data}


MAP = "<!-- overview map -->"  # where a section's overview map goes in qa.html
QA_REPORTS = ("qa.md", "qa.html", "qa.json")  # under reports/, written together


def write_qa_reports(sections: list[QASection], work: WorkDir, crs_name: str) -> None:
    """``qa.md``, ``qa.html`` and ``qa.json`` from the communes' sections (in order)."""
    summary = pd.DataFrame([s.summary for s in sections])
    intro = [f"Tọa độ: {crs_name}; X là tọa độ bắc, Y là tọa độ đông (theo quy ước Việt Nam). Diện tích tính "
             "bằng m².",
             "Phần chồng đè chỉ được tính một lần trong khoanh đất: thửa có số tờ/số thửa nhỏ hơn giữ phần "
             "diện tích chung.",
             "Các lỗi có trong GeoPackage (nhóm lớp «Kiểm tra QA») để mở và sửa trong QGIS."]
    md = ["# Báo cáo kiểm tra chất lượng dữ liệu thửa đất (topo)", "", *intro, "", markdown_table(summary), ""]
    doc = ["<h1>Báo cáo kiểm tra chất lượng dữ liệu thửa đất (topo)</h1>",
           *[f"<p>{html.escape(line)}</p>" for line in intro], _html_table(summary)]
    for section in sections:
        png = overview_path(work, section.commune_code).read_bytes()  # drawn by the commune's QA task
        image = f'<img alt="Sơ đồ vị trí các lỗi" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        md += section.markdown
        doc += [image if part == MAP else part for part in section.html]
    write_text(work.report("qa.md"), "\n".join(md))
    write_text(work.report("qa.html"),
               "<!doctype html><html lang='vi'><meta charset='utf-8'><title>Kiểm tra chất lượng dữ liệu</title>"
               "<style>body{font-family:sans-serif}td,th{padding:2px 6px;border:1px solid #ccc}"
               "table{border-collapse:collapse}</style><body>" + "\n".join(doc) + "</body></html>\n")
    write_json(work.report("qa.json"), [s.data for s in sections])
