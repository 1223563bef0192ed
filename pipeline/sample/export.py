"""A sample commune written the way a VBDLIS / web-map export is, and the
forest status map (bản đồ hiện trạng rừng) that refines its forest groups.

The export: GeoJSON in WGS 84 as a web map serves it, camelCase columns
(``soTo``, ``soThua``, ``dienTich``, ``mucDichSuDung``, ``tenChu``,
``dienTichDatO``: the residential part of a compound parcel), no
user/manager object column and no commune code, cadastral codes (``RSX``,
``RPH``, ``HNK``, a few ``LUA``, ``LNK``), compound codes written ``ONT +CLN``,
a few land uses written as names, a few areas turned into spreadsheet dates
(``01/05/1783`` for 1 783.5 m²), owner names only ("UBND xã …", schools,
companies, "N/A" on roads). The forest status map: polygons of natural and
planted forest and of land not yet forest, in VN-2000 / UTM 48N with TCVN3
text and no ``.cpg``, drawn from the true forest codes but from another
survey (the natural forest's edge lies a few metres out), so some parcels
straddle two statuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .. import crs as vn
from ..io import write_text
from ..vntext import encode_tcvn3
from .previous import write_archived_shapefile

#: True code → the cadastral code the export writes (Circular 25/2014 has no forest split).
CADASTRAL = {"RSN": "RSX", "RST": "RSX", "RSM": "RSX", "RPN": "RPH", "RPT": "RPH", "RPM": "RPH", "BHK": "HNK"}
NAMES = {"ONT": "Đất ở tại nông thôn", "CLN": "Đất trồng cây lâu năm", "NTS": "Đất nuôi trồng thủy sản",
         "DGT": "Đất giao thông", "LUK": "Đất trồng lúa nước còn lại"}
#: The forest status map's values (TRANGTHAI), by status.
STATUS_VI = {"natural": "Rừng tự nhiên", "planted": "Rừng trồng", "not_forest": "Đất chưa có rừng"}
EDGE_M = 4.0  # how far out the forest survey draws the natural forest's edge
STRADDLING = 25  # large forest parcels the forest survey cuts in two (west natural, east planted)


def export_codes(rng: np.random.Generator, codes: np.ndarray) -> np.ndarray:
    """The land-use column as the export writes it."""
    out = np.array([CADASTRAL.get(c, c) for c in codes], dtype=object)
    u = rng.uniform(0, 1, len(codes))
    paddy = np.isin(codes, ["LUC", "LUK"]) & (u < 0.15)
    out[paddy] = "LUA"
    out[(codes == "CLN") & (u > 0.9)] = "LNK"
    spaced = np.char.find(codes.astype(str), "+") > 0
    out[spaced & (u < 0.5)] = [c.replace("+", " +") for c in out[spaced & (u < 0.5)]]
    named = np.isin(codes, list(NAMES)) & (u > 0.97)
    out[named] = [NAMES[c] for c in codes[named]]
    return out


def owner_names(rng: np.random.Generator, codes: np.ndarray, owners: np.ndarray, persons: np.ndarray,
                commune_name: str) -> np.ndarray:
    """The owner column as a web export shows it: names of people and bodies, nothing for public land."""
    short = commune_name.removeprefix("Xã ")
    by_code = {"DGD": f"Trường Tiểu học {short}", "DYT": f"Trạm y tế xã {short}", "TSC": f"UBND xã {short}",
               "DSH": "Nhà văn hóa thôn Nà Pàn", "TMD": f"Công ty TNHH Thương mại {short}",
               "DCH": f"UBND xã {short} (quản lý)"}
    by_owner = {"TCN": "Ban quản lý rừng phòng hộ huyện Văn Quan", "TKT": "Công ty TNHH Lâm nghiệp Văn Quan",
                "CDS": "Cộng đồng thôn Bản Thẳm", "UBQ": f"UBND xã {short}"}
    out = persons.astype(object).copy()
    for owner, name in by_owner.items():
        out[owners == owner] = name
    for code, name in by_code.items():
        out[codes == code] = name
    public = np.isin(codes, ["DGT", "SON", "NTD", "BCS", "DCS", "NCS"])
    out[public] = np.where(rng.uniform(0, 1, int(public.sum())) < 0.5, "N/A", "")
    return out


def _area_value(area: float, as_date: bool) -> object:
    """A recorded area, or the spreadsheet date it became (1783.5 → 01/05/1783)."""
    value = round(float(area), 1)
    tenths = int(round(value * 10)) % 10
    if as_date and tenths and 1000 <= value < 10000:
        return f"01/{tenths:02d}/{int(value)}"
    return value


def write_web_export(frame: gpd.GeoDataFrame, path: Path, rng: np.random.Generator, commune_name: str,
                     meridian: float) -> list[Path]:
    """The commune as a web-map export (see the module docstring)."""
    codes = frame["KHLOAIDAT"].to_numpy(dtype=object)
    names = owner_names(rng, codes, frame["DOITUONG"].to_numpy(dtype=object), frame["TENCHU"].to_numpy(),
                        commune_name)
    dates = rng.uniform(0, 1, len(frame)) < 0.01
    area = shapely.area(frame.geometry.values)
    props = pd.DataFrame({"objectId": np.arange(1, len(frame) + 1), "soTo": frame["SHBANDO"].astype(int),
                          "soThua": frame["SHTHUA"].astype(int),
                          "dienTich": [_area_value(a, d) for a, d in zip(area, dates, strict=True)],
                          "mucDichSuDung": export_codes(rng, codes), "tenChu": names,
                          "dienTichDatO": frame["DT_ONT"].round(1)})
    wgs = vn.reproject(frame.geometry.values, CRS.from_epsg(4326), meridian, inverse=True)
    wgs = shapely.set_precision(wgs, 1e-10)
    features = [{"type": "Feature", "properties": {k: (v.item() if hasattr(v, "item") else v)
                                                   for k, v in row.items()},
                 "geometry": json.loads(shapely.to_geojson(g))} for row, g in zip(props.to_dict("records"), wgs,
                                                                                  strict=True)]
    collection = {"type": "FeatureCollection", "name": "thuaDat",
                  "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
                  "features": features}
    write_text(path, json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n")
    return [path]


def forest_status_map(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Status polygons drawn from the true forest codes, by another survey:
    the natural forest's edge a few metres out, the rest planted."""
    codes = frame["KHLOAIDAT"].to_numpy(dtype=object)
    geoms = frame.geometry.values
    natural = shapely.union_all(geoms[np.isin(codes, ["RSN", "RPN", "RDN"])])
    planted = shapely.union_all(geoms[np.isin(codes, ["RST", "RPT", "RDT"])])
    not_forest = shapely.union_all(geoms[np.isin(codes, ["RSM", "RPM", "RDM"])])
    forest = shapely.union_all([natural, planted, not_forest])
    natural = shapely.intersection(shapely.buffer(natural, EDGE_M), forest)
    large = np.flatnonzero(np.isin(codes, ["RSN", "RST"]) & (shapely.area(geoms) > 30_000))[:STRADDLING]
    if len(large):  # the survey's line runs through these: their west half natural, east half planted
        x = shapely.get_coordinates(shapely.centroid(geoms[large]))[:, 0]
        west = [shapely.intersection(g, shapely.box(g.bounds[0] - 1, g.bounds[1] - 1, cx, g.bounds[3] + 1))
                for g, cx in zip(geoms[large], x, strict=True)]
        natural = shapely.union_all([shapely.difference(natural, shapely.union_all(geoms[large])), *west])
    planted = shapely.difference(shapely.union_all([planted, *geoms[large]]) if len(large) else planted, natural)
    rows = [(status, g) for status, g in (("natural", natural), ("planted", planted), ("not_forest", not_forest))
            if not g.is_empty]
    parts = [(s, p) for s, g in rows for p in shapely.get_parts(g) if p.area > 100]
    return gpd.GeoDataFrame({"status": [s for s, _ in parts]}, geometry=[p for _, p in parts], crs=frame.crs)


def write_forest_map(layers: list[gpd.GeoDataFrame], path: Path, meridian: float) -> list[Path]:
    """The forest status map of the sample: VN-2000 / UTM 48N, TCVN3 text, no .cpg."""
    frame = gpd.GeoDataFrame(pd.concat(layers, ignore_index=True), geometry="geometry", crs=layers[0].crs)
    out = gpd.GeoDataFrame({"MALO": np.arange(1, len(frame) + 1, dtype=np.int32),
                            "TRANGTHAI": [encode_tcvn3(STATUS_VI[s]) for s in frame["status"]],
                            "DIENTICH": np.round(shapely.area(frame.geometry.values) / 1e4, 2)},
                           geometry=frame.geometry.values, crs=frame.crs)
    return write_archived_shapefile(out, path, meridian)
