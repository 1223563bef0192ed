"""Package: one GeoPackage that opens styled in QGIS, a QGIS project next to it,
and a Cloud-Optimized GeoTIFF of current use.

- ``<Province>_<year>_HTSDD.gpkg`` (GeoPackage 1.2, so QGIS 3.22 / GDAL 3.6 open
  it without warnings): parcels (thua_dat), khoanh đất (khoanh_dat),
  commune/district/province boundaries, every QA layer, the area tables
  behind the forms and, when a previous inventory was compared, the changed
  areas (bien_dong, styled by the new use) and the transition table (chu_chuyen); Vietnamese titles and descriptions in ``gpkg_contents``;
  spatial indexes; default styles (QML + SLD) in ``layer_styles``.
- ``<Province>_<year>_HTSDD.qgz``: the project, layers by relative path, in the
  province CRS.
- ``<Province>_<year>_HTSDD.tif``: current use rasterised (10 m for the
  province; ``rasters/<level>_<code>.tif`` at 5 m for communes and districts),
  COG with palette, category names and overviews.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from . import crs as vn
from .boundaries import load_boundaries
from .config import WorkDir
from .io import atomic_path, read_geoparquets, up_to_date, write_text
from .qa import LAYER_TITLES, read_qa_layer
from .qgis_project import project_xml
from .qgis_styles import LayerStyle, boundary_style, landuse_style, qa_style
from .reference import landuse_colors, landuse_tree
from .topology import polygonal
from .vntext import strip_diacritics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpkgLayer:
    """A layer of the GeoPackage: name, Vietnamese title and description, data, style."""

    name: str
    title: str
    description: str
    frame: pd.DataFrame
    style: LayerStyle | None = None

    @property
    def spatial(self) -> bool:
        return isinstance(self.frame, gpd.GeoDataFrame)


def product_stem(province: str, year: int) -> str:
    """``Lạng Sơn``, 2019 → ``LangSon_2019_HTSDD``."""
    return f"{strip_diacritics(province).title().replace(' ', '').replace('.', '')}_{year}_HTSDD"


def _to_multipolygon(geoms) -> list:
    """Every geometry as a MultiPolygon (one geometry type per layer, as QGIS likes)."""
    out = []
    for geom in geoms:
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            geom = polygonal(geom)
        out.append(geom if geom.geom_type == "MultiPolygon" else
                   shapely.MultiPolygon([geom]) if not geom.is_empty else shapely.MultiPolygon())
    return out


def collect_layers(work: WorkDir, manifest: dict) -> list[GpkgLayer]:
    """Every layer and table of the GeoPackage, in drawing order (top first)."""
    meridian = float(manifest["central_meridian_deg"])
    target = vn.tm3_crs(meridian)
    khoanh = read_geoparquets(sorted(work.khoanh_dir.glob("*.parquet")), crs=target)
    parcels = read_geoparquets(work.parcel_files(), crs=target)
    bounds = load_boundaries(manifest.get("boundaries"), meridian)
    layers: list[GpkgLayer] = []
    for name in ("overlaps", "duplicates", "gaps", "slivers", "crossings", "invalid"):
        qa = read_qa_layer(work, name)
        if isinstance(qa, gpd.GeoDataFrame) and len(qa):
            qa = gpd.GeoDataFrame(qa, geometry="geometry", crs=target)
            qa = qa.set_geometry(_to_multipolygon(shapely.make_valid(qa.geometry.values)), crs=target)
            layers.append(GpkgLayer(f"qa_{name}", f"QA: {LAYER_TITLES[name]}",
                                    "Vấn đề topo do kiemke phát hiện; X = tọa độ Bắc, Y = tọa độ Đông (VN-2000).",
                                    qa, qa_style(f"qa_{name}", name, LAYER_TITLES[name])))
    if len(bounds):
        province = gpd.GeoDataFrame({"ten": [f"Tỉnh {manifest['province']}"], "ma": [manifest["province_code"]]},
                                    geometry=[shapely.union_all(bounds.geometry.values)], crs=target)
        districts = bounds.dissolve("district_code", as_index=False)[["district_code", "district_name", "geometry"]]
        for name, frame, level, title in (
            ("ranh_gioi_tinh", province, "tinh", "Ranh giới tỉnh"),
            ("ranh_gioi_huyen", districts, "huyen", "Ranh giới huyện"),
            ("ranh_gioi_xa", bounds, "xa", "Ranh giới xã"),
        ):
            frame = frame.set_geometry(_to_multipolygon(frame.geometry.values), crs=target)
            layers.append(GpkgLayer(name, title, f"{title} (từ tệp ranh giới của cấu hình).", frame,
                                    boundary_style(name, level, title)))
    codes = sorted(set(khoanh["landuse"].dropna()) | set(parcels["landuse"]))
    khoanh = khoanh.set_geometry(_to_multipolygon(khoanh.geometry.values), crs=target)
    parcels = parcels.set_geometry(_to_multipolygon(parcels.geometry.values), crs=target)
    layers.append(GpkgLayer("khoanh_dat", "Khoanh đất hiện trạng năm " + str(manifest["reference_date"])[:4],
                            "Khoanh đất: các thửa liền kề cùng mã loại đất và mã đối tượng sử dụng, quản lý.",
                            khoanh, landuse_style("khoanh_dat", codes, "Khoanh đất theo mã loại đất")))
    layers.append(GpkgLayer("thua_dat", "Thửa đất", "Thửa đất sau chuẩn hóa (kiemke ingest), hệ VN-2000 TM-3.",
                            parcels, landuse_style("thua_dat", codes, "Thửa đất theo mã loại đất")))
    layers += change_layers(work, manifest, target)
    areas = pd.read_csv(work.areas_csv, dtype={"commune_code": str})
    summary = pd.read_csv(work.stats_dir / "summary.csv", dtype={"commune_code": str})
    layers.append(GpkgLayer("dien_tich_theo_doi_tuong", "Diện tích theo mã loại đất và đối tượng (m²)",
                            "Bảng gốc của các biểu thống kê: xã × mã loại đất × mã đối tượng.", areas))
    layers.append(GpkgLayer("dien_tich_theo_loai_dat", "Diện tích theo mã loại đất (cả mã cấp trên)",
                            "Diện tích từng mã trong cây mã loại đất của mỗi xã; TONG = NNP + PNN + CSD.", summary))
    return layers


def change_layers(work: WorkDir, manifest: dict, crs) -> list[GpkgLayer]:
    """The areas whose use changed since the previous inventory (styled by the
    new use) and the transition table, when a previous inventory was compared."""
    files = sorted(work.change_dir.glob("*.parquet"))
    if not manifest.get("previous") or not files or not work.transitions_csv.exists():
        return []
    before, now = manifest["previous"]["year"], str(manifest["reference_date"])[:4]
    pieces = read_geoparquets(files, crs=crs)
    changed = pieces[pieces["changed"] & ~pieces["to_leaf"].isin(["NGOAI", "KHOANGHO"])]
    changed = gpd.GeoDataFrame({
        "commune_code": changed["commune_code"], "khoanh_no": changed["khoanh_no"],
        f"ma_{before}": changed["from_code"], f"ma_{now}": changed["to_code"], "landuse": changed["to_leaf"],
        "area_m2": changed["area_m2"].round(2),
    }, geometry=_to_multipolygon(changed.geometry.values), crs=crs)
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
                append=k > 0, dataset_options={"VERSION": "1.2"} if k == 0 else None, layer_options=options)
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


def write_project(path: Path, gpkg: Path, layers: list[GpkgLayer], crs, title: str) -> Path:
    """The .qgz: a zipped .qgs referencing the GeoPackage by a relative path."""
    xml = project_xml(gpkg.name, [(layer.name, layer.title, layer.style, layer.frame) for layer in layers
                                  if layer.spatial], crs, title)
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(path.with_suffix(".qgs").name, xml)
    return path


# --------------------------------------------------------------------- raster


def raster_codes() -> list[str]:
    """Raster values 1…n: the leaf land-use codes in code-tree order (0 = no data)."""
    tree = landuse_tree()
    return [c for c in tree.codes if tree.is_leaf(c)]


def write_cog(path: Path, khoanh: gpd.GeoDataFrame, resolution: float, crs) -> dict[str, float]:
    """Rasterise khoanh by land-use code into a paletted Cloud-Optimized GeoTIFF.

    Returns the area (m²) of each code counted in the raster.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.features import rasterize
    from rasterio.shutil import copy as rio_copy
    from rasterio.transform import from_origin

    codes = raster_codes()
    value = {c: i + 1 for i, c in enumerate(codes)}
    coded = khoanh[khoanh["landuse"].notna()]
    x0, y0, x1, y1 = khoanh.total_bounds
    x0, y0 = np.floor(x0 / resolution) * resolution, np.floor(y0 / resolution) * resolution
    width, height = int(np.ceil((x1 - x0) / resolution)), int(np.ceil((y1 - y0) / resolution))
    transform = from_origin(x0, y0 + height * resolution, resolution, resolution)
    band = rasterize(zip(coded.geometry.values, coded["landuse"].map(value)), out_shape=(height, width),
                     transform=transform, fill=0, dtype="uint8")
    colours = landuse_colors()
    colormap = {0: (255, 255, 255, 0)}
    for code, v in value.items():
        h = colours.at[code, "hex"].lstrip("#")
        colormap[v] = (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255)
    tree = landuse_tree()
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "uint8", "crs": crs,
               "transform": transform, "nodata": 0, "tiled": True, "blockxsize": 512, "blockysize": 512,
               "compress": "deflate"}
    with tempfile.TemporaryDirectory() as tmpdir:
        plain = Path(tmpdir) / "plain.tif"
        with rasterio.open(plain, "w", **profile) as dst:
            dst.write_colormap(1, colormap)
            dst.write(band, 1)
            dst.update_tags(1, **{f"CODE_{v}": f"{c} - {tree.name(c)}" for c, v in value.items()})
            dst.update_tags(landuse_codes=",".join(codes), source="kiemke khoanh đất",
                            resolution_m=str(resolution))
            dst.set_band_description(1, "Mã loại đất hiện trạng (Thông tư 27/2018/TT-BTNMT)")
            dst.build_overviews([2, 4, 8, 16], Resampling.nearest)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            rio_copy(plain, tmp, driver="COG", compress="DEFLATE", overview_resampling="NEAREST",
                     resampling="NEAREST", blocksize=512)
    # category names, read by GDAL/QGIS from the PAM side-car
    names = ["Không có dữ liệu", *[f"{c} - {tree.name(c)}" for c in codes]]
    write_text(path.with_name(path.name + ".aux.xml"),
               '<PAMDataset><PAMRasterBand band="1"><CategoryNames>'
               + "".join(f"<Category>{escape(n)}</Category>" for n in names)
               + "</CategoryNames></PAMRasterBand></PAMDataset>\n")
    counts = np.bincount(band.ravel(), minlength=len(codes) + 1)
    return {c: float(counts[v]) * resolution**2 for c, v in value.items() if counts[v]}


def raster_area_by_code(path: Path) -> dict[str, float]:
    """Area (m²) of each land-use code counted in a kiemke GeoTIFF."""
    import rasterio

    with rasterio.open(path) as src:
        band = src.read(1)
        codes = src.tags()["landuse_codes"].split(",")
        cell = abs(src.res[0] * src.res[1])
    counts = np.bincount(band.ravel(), minlength=len(codes) + 1)
    return {c: float(counts[i + 1]) * cell for i, c in enumerate(codes) if counts[i + 1]}


# ---------------------------------------------------------------------- stage


def run_package(workdir: Path, *, commune_resolution: float = 5.0, province_resolution: float = 10.0,
                styles_dir: Path | None = None) -> dict[str, Path]:
    """GeoPackage with styles, QGIS project and GeoTIFFs into the work directory."""
    from .forms import build_units

    work = WorkDir(workdir)
    manifest = work.read_manifest()
    meridian = float(manifest["central_meridian_deg"])
    crs = vn.tm3_crs(meridian)
    stem = product_stem(manifest["province"], int(str(manifest["reference_date"])[:4]))
    products = {"gpkg": work.root / f"{stem}.gpkg", "project": work.root / f"{stem}.qgz",
                "tif": work.root / f"{stem}.tif"}
    inputs = [*work.parcel_files(), *work.khoanh_dir.glob("*.parquet"), *work.qa_dir.glob("*/*.parquet"),
              *work.change_dir.glob("*.parquet"), work.areas_csv, work.manifest]
    if up_to_date(list(products.values()), inputs):
        return products
    layers = collect_layers(work, manifest)
    gpkg = write_geopackage(work.root / f"{stem}.gpkg", layers, crs)
    styles = [layer.style for layer in layers if layer.style is not None]
    write_style_files(styles_dir or work.root / "styles", styles)
    project = write_project(work.root / f"{stem}.qgz", gpkg, layers, crs,
                            f"Hiện trạng sử dụng đất năm {str(manifest['reference_date'])[:4]} — "
                            f"Tỉnh {manifest['province']}")
    khoanh = next(layer.frame for layer in layers if layer.name == "khoanh_dat")
    tif = work.root / f"{stem}.tif"
    raster_areas = {"tinh": write_cog(tif, khoanh, province_resolution, crs)}
    units = build_units(sorted(khoanh["commune_code"].unique()), load_boundaries(manifest.get("boundaries"), meridian),
                        manifest["province"], manifest["province_code"])
    for unit in units:
        if unit.level in ("xa", "huyen"):
            path = work.root / "rasters" / f"{unit.level}_{unit.code}.tif"
            if up_to_date([path], [work.khoanh(c) for c in unit.communes] + [work.manifest]):
                raster_areas[unit.key] = raster_area_by_code(path)
                continue
            mine = khoanh[khoanh["commune_code"].isin(unit.communes)]
            raster_areas[unit.key] = write_cog(path, mine, commune_resolution, crs)
    pd.DataFrame([{"unit": k, "landuse": c, "area_m2": a} for k, v in raster_areas.items() for c, a in v.items()]) \
        .pipe(lambda f: write_text(work.reports_dir / "raster_areas.csv", f.to_csv(index=False)))
    log.info("package: %s, %s, %s", gpkg, project, tif)
    return {"gpkg": gpkg, "project": project, "tif": tif}
