"""The GeoPackage (1.2, so QGIS 3.22 / GDAL 3.6 open it without warnings):
parcels (thua_dat), khoanh đất (khoanh_dat), commune/district/province
boundaries, every QA layer, the area tables behind the forms and, when a
previous inventory was compared, the changed areas (bien_dong, styled by the
new use) and the transition table (chu_chuyen); Vietnamese titles and
descriptions in ``gpkg_contents``; spatial indexes; default styles (QML + SLD)
in ``layer_styles``."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from ..ingest.review import review_frame
from ..io import read_geoparquets, write_text
from ..qa import LAYER_TITLES, read_qa_layer
from ..topology import polygonal
from ..workdir import RunManifest, WorkDir
from .styles import LayerStyle, boundary_style, landuse_style, qa_style, review_style


@dataclass(frozen=True)
class GpkgLayer:
    """A layer of the GeoPackage: name, Vietnamese title and description, data, style."""

    name: str
    title: str
    description: str
    frame: pd.DataFrame
    style: LayerStyle | None = None
    group: str | None = None  # the QGIS project's group, when not the one its name gives

    @property
    def spatial(self) -> bool:
        return isinstance(self.frame, gpd.GeoDataFrame)


def to_multipolygon(geoms) -> np.ndarray:
    """Every geometry as a MultiPolygon (one geometry type per layer, as QGIS likes)."""
    geoms = np.array(geoms, dtype=object)
    odd = ~np.isin(shapely.get_type_id(geoms), [3, 6])  # neither Polygon nor MultiPolygon
    geoms[odd] = [polygonal(g) for g in geoms[odd]]
    parts, owner = shapely.get_parts(geoms, return_index=True)
    solid = ~shapely.is_empty(parts)
    out = shapely.multipolygons(parts[solid], indices=owner[solid], out=np.empty(len(geoms), dtype=object))
    out[shapely.is_missing(out)] = shapely.MultiPolygon()
    return out


def collect_layers(work: WorkDir, manifest: RunManifest) -> list[GpkgLayer]:
    """Every layer and table of the GeoPackage, in drawing order (top first)."""
    target = manifest.crs
    khoanh = read_geoparquets(work.khoanh_files(), crs=target)
    parcels = read_geoparquets(work.parcel_files(), crs=target)
    bounds = manifest.load_boundaries()
    layers: list[GpkgLayer] = []
    for name in ("overlaps", "duplicates", "gaps", "slivers", "crossings", "invalid"):
        qa = read_qa_layer(work, name)
        if isinstance(qa, gpd.GeoDataFrame) and len(qa):
            qa = gpd.GeoDataFrame(qa, geometry="geometry", crs=target)
            qa = qa.set_geometry(to_multipolygon(shapely.make_valid(qa.geometry.values)), crs=target)
            layers.append(GpkgLayer(f"qa_{name}", f"QA: {LAYER_TITLES[name]}",
                                    "Vấn đề topo do kiemke phát hiện; X = tọa độ Bắc, Y = tọa độ Đông (VN-2000).",
                                    qa, qa_style(f"qa_{name}", name, LAYER_TITLES[name])))
    if len(bounds):
        province = gpd.GeoDataFrame({"ten": [f"Tỉnh {manifest.province.name_vi}"],
                                     "ma": [manifest.province.gso_code]},
                                    geometry=[shapely.union_all(bounds.geometry.values)], crs=target)
        districts = bounds.dissolve("district_code", as_index=False)[["district_code", "district_name", "geometry"]]
        for name, frame, level, title in (
            ("ranh_gioi_tinh", province, "tinh", "Ranh giới tỉnh"),
            *([("ranh_gioi_huyen", districts, "huyen", "Ranh giới huyện")] if "huyen" in manifest.levels else []),
            ("ranh_gioi_xa", bounds, "xa", "Ranh giới xã"),
        ):
            frame = frame.set_geometry(to_multipolygon(frame.geometry.values), crs=target)
            layers.append(GpkgLayer(name, title, f"{title} (từ tệp ranh giới của cấu hình).", frame,
                                    boundary_style(name, level, title)))
    codes = sorted(set(khoanh["landuse"].dropna()) | set(parcels["landuse"]))
    khoanh = khoanh.set_geometry(to_multipolygon(khoanh.geometry.values), crs=target)
    parcels = parcels.set_geometry(to_multipolygon(parcels.geometry.values), crs=target)
    layers.append(GpkgLayer("khoanh_dat", f"Khoanh đất hiện trạng năm {manifest.year}",
                            "Khoanh đất: các thửa liền kề cùng mã loại đất và mã đối tượng sử dụng, quản lý.",
                            khoanh, landuse_style("khoanh_dat", codes, "Khoanh đất theo mã loại đất")))
    layers.append(GpkgLayer("thua_dat", "Thửa đất", "Thửa đất sau chuẩn hóa (kiemke ingest), hệ VN-2000 TM-3.",
                            parcels, landuse_style("thua_dat", codes, "Thửa đất theo mã loại đất")))
    layers += change_layers(work, manifest, target)
    layers = new_unit_layers(work, manifest, codes) + layers
    review = review_layer(work, manifest, parcels)
    if review is not None:
        layers.insert(0, review)
    areas = pd.read_csv(work.areas_csv, dtype={"commune_code": str})
    summary = pd.read_csv(work.summary_csv, dtype={"commune_code": str})
    layers.append(GpkgLayer("dien_tich_theo_doi_tuong", "Diện tích theo mã loại đất và đối tượng (m²)",
                            "Bảng gốc của các biểu thống kê: xã × mã loại đất × mã đối tượng.", areas))
    layers.append(GpkgLayer("dien_tich_theo_loai_dat", "Diện tích theo mã loại đất (cả mã cấp trên)",
                            "Diện tích từng mã trong cây mã loại đất của mỗi xã; TONG = NNP + PNN + CSD.", summary))
    return [replace(layer, style=layer.style.with_fields(layer.frame.columns)) if layer.style else layer
            for layer in layers]


NEW_UNITS_GROUP = "Đơn vị hành chính {label}"


def new_unit_layers(work: WorkDir, manifest: RunManifest, codes: list[str]) -> list[GpkgLayer]:
    """Per ``[units]`` regrouped: the new units' boundaries and the khoanh cut
    by them (``ranh_gioi_xa_<label>``, ``khoanh_dat_<label>``), styled like the others."""
    layers = []
    for spec in manifest.units:
        derived = WorkDir(work.root / f"units_{spec.label}")
        if not derived.manifest.exists() or not derived.khoanh_files():
            continue
        group = NEW_UNITS_GROUP.format(label=spec.label)
        bounds = derived.read_manifest().load_boundaries()[["commune_code", "commune_name", "geometry"]]
        bounds = bounds.set_geometry(to_multipolygon(bounds.geometry.values), crs=manifest.crs)
        pieces = read_geoparquets(derived.khoanh_files(), crs=manifest.crs)
        pieces = pieces.set_geometry(to_multipolygon(pieces.geometry.values), crs=manifest.crs)
        title = f"Ranh giới xã ({spec.label})"
        layers += [
            GpkgLayer(f"ranh_gioi_xa_{spec.label}", title, f"Đơn vị hành chính cấp xã {spec.label} ({spec.path.name}).",
                      bounds, boundary_style(f"ranh_gioi_xa_{spec.label}", "xa", title), group),
            GpkgLayer(f"khoanh_dat_{spec.label}", f"Khoanh đất năm {manifest.year} theo đơn vị {spec.label}",
                      f"Khoanh đất cắt theo ranh giới đơn vị hành chính {spec.label} (mã xã là mã đơn vị mới; "
                      "old_commune_code là mã xã cũ).", pieces,
                      landuse_style(f"khoanh_dat_{spec.label}", codes, f"Khoanh đất theo đơn vị {spec.label}"), group),
        ]
    return layers


def review_layer(work: WorkDir, manifest: RunManifest, parcels: gpd.GeoDataFrame) -> GpkgLayer | None:
    """The parcels the officer should look at (the review workbooks' rows with
    their geometry): quarantined, inferred object, refined or corrected code."""
    quarantine_files = sorted(work.quarantine_dir.glob("*.parquet"))
    quarantine = read_geoparquets(quarantine_files, crs=manifest.crs) if quarantine_files else \
        parcels.iloc[:0].assign(reason="")
    frame = review_frame(parcels, quarantine)
    if frame.empty:
        return None
    frame = frame.assign(source_file=frame["source_file"].map(manifest.shown))
    frame = frame.set_geometry(to_multipolygon(frame.geometry.values), crs=manifest.crs)
    return GpkgLayer("review", "Thửa đất cần rà soát",
                     "Thửa bị cách ly, thửa có đối tượng suy ra hoặc mã chuyển theo quy tắc, thửa đã sửa theo cán bộ "
                     "(như trong reports/review/*.xlsx).", frame, review_style("review", "Thửa đất cần rà soát"))


def change_layers(work: WorkDir, manifest: RunManifest, crs) -> list[GpkgLayer]:
    """The areas whose use changed since the previous inventory (styled by the
    new use) and the transition table, when a previous inventory was compared."""
    files = sorted(work.change_dir.glob("*.parquet"))
    if manifest.previous is None or not files or not work.transitions_csv.exists():
        return []
    before, now = manifest.previous.year, manifest.year
    pieces = read_geoparquets(files, crs=crs)
    changed = pieces[pieces["changed"] & ~pieces["to_leaf"].isin(["NGOAI", "KHOANGHO"])]
    changed = gpd.GeoDataFrame({
        "commune_code": changed["commune_code"], "khoanh_no": changed["khoanh_no"],
        f"ma_{before}": changed["from_code"], f"ma_{now}": changed["to_code"], "landuse": changed["to_leaf"],
        "area_m2": changed["area_m2"].round(2),
    }, geometry=to_multipolygon(changed.geometry.values), crs=crs)
    title = f"Biến động sử dụng đất {before} - {now}"
    transitions = pd.read_csv(work.transitions_csv, dtype={"commune_code": str})
    return [
        GpkgLayer("bien_dong", title, f"Phần diện tích có mục đích sử dụng năm {now} khác năm {before} "
                  "(chồng xếp chính xác); tô màu theo mục đích mới.", changed,
                  landuse_style("bien_dong", sorted(set(changed["landuse"])), f"{title} theo mục đích mới")),
        GpkgLayer("chu_chuyen", f"Chu chuyển đất đai {before} - {now} (m²)",
                  "Xã × mã năm trước × mã năm nay; NGOAI = ngoài bản đồ năm kia, KHOANGHO = khoảng hở.", transitions),
    ]


def write_geopackage(path: Path, layers: list[GpkgLayer], crs) -> Path:
    """Write all layers (GeoPackage 1.2, spatial indexes), then titles and styles."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".gpkg", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        for k, layer in enumerate(layers):
            options = {"IDENTIFIER": layer.title, "DESCRIPTION": layer.description}
            if layer.spatial:
                options["SPATIAL_INDEX"] = "YES"
            pyogrio.write_dataframe(
                layer.frame if layer.spatial else pd.DataFrame(layer.frame), tmp, layer=layer.name, driver="GPKG",
                append=k > 0, dataset_options={"VERSION": "1.2"} if k == 0 else None, layer_options=options,
                use_arrow=True)
        write_layer_styles(tmp, [layer.style for layer in layers if layer.style is not None], layers)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        for extra in (tmp.with_name(tmp.name + "-journal"), tmp.with_name(tmp.name + "-wal")):
            extra.unlink(missing_ok=True)
    return path


def write_layer_styles(gpkg: Path, styles: list[LayerStyle], layers: list[GpkgLayer]) -> None:
    """The ``layer_styles`` table QGIS reads defaults from (one default style per layer)."""
    geometry_column = {layer.name: "geom" for layer in layers if layer.spatial}
    with sqlite3.connect(gpkg) as db:
        db.execute("""CREATE TABLE IF NOT EXISTS layer_styles (
            id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
            f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT,
            styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
            update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))""")
        db.execute("""INSERT OR REPLACE INTO gpkg_contents (table_name, data_type, identifier, description)
                      VALUES ('layer_styles', 'attributes', 'layer_styles', 'Kiểu hiển thị QGIS mặc định')""")
        db.executemany(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName,"
            " styleQML, styleSLD, useAsDefault, description, owner, ui) VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, "
            "'kiemke', NULL)",
            [(s.layer, geometry_column.get(s.layer, "geom"), s.layer, s.qml, s.sld, s.description) for s in styles])


def write_style_files(folder: Path, styles: list[LayerStyle]) -> list[Path]:
    """The same QML and SLD as files (``styles/``), for reuse in other projects."""
    written = []
    for style in styles:
        written.append(write_text(folder / f"{style.layer}.qml", style.qml))
        written.append(write_text(folder / f"{style.layer}.sld", style.sld))
    return written
