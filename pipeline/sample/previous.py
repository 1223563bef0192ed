"""The bundled sample's previous inventory (2014) and 2018 statistics.

Derived from the clean 2019 parcels of each sample commune with documented
changes, so that the change stage has known answers:

- ``LUA → ONT/ODT``: houses built on paddy along the roads (about 2.5 ha per
  commune: residential parcels that were LUC in 2014);
- ``RPH → RSX``: a block of protection forest reclassified as production
  forest (about 12 ha), and ``RSX → RPH`` the other way (about 8 ha);
- ``BCS → RSX``: unused land planted with production forest (about 4 ha).

Everything else had the same use in 2014, written with the 2014 codes: no
forest sub-codes (RSN/RST → RSX, RPN/RPT → RPH; TT 28/2014). The layer is a
khoanh layer (parcels merged by code and user, as the 2014 maps were), one
shapefile for the district in VN-2000 / UTM zone 48N, text in TCVN3 with no
.cpg, like the archives. Written next to the 2019 files with
``changes_2014_2019.csv`` (the expected transitions) and ``thong_ke_2018.csv``
(the 2018 statistics, in which half of the new houses were not yet counted).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from .. import crs as vn
from ..change import comparison_code
from ..khoanh import build_khoanh
from ..regime import DEFAULT_TEMPLATE, load_template
from ..vntext import encode_tcvn3

PREVIOUS_YEAR = 2014
STATISTICS_YEAR = 2018
PREVIOUS_FOLDER = "kiem_ke_2014"
COLLAPSE = load_template(DEFAULT_TEMPLATE).collapse()  # Biểu 14's comparison level
# TT 28/2014 had no forest sub-codes (the other codes of the sample existed then)
FOREST_2014 = {"RSN": "RSX", "RST": "RSX", "RSM": "RSX", "RPN": "RPH", "RPT": "RPH", "RPM": "RPH",
               "RDN": "RDD", "RDT": "RDD", "RDM": "RDD"}
# (name, 2019 codes picked, 2014 code, target ha, 2014 owner or None to keep, clustered)
CHANGES = (
    ("LUA → ONT/ODT (nhà ở ven đường trên đất lúa)", ("ONT", "ODT"), "LUC", 2.5, None, False),
    ("RPH → RSX (rừng phòng hộ chuyển sang rừng sản xuất)", ("RSN", "RST"), "RPH", 12.0, None, True),
    ("RSX → RPH (rừng sản xuất chuyển sang rừng phòng hộ)", ("RPN", "RPT"), "RSX", 8.0, None, True),
    ("BCS → RSX (trồng rừng trên đất chưa sử dụng)", ("RST",), "BCS", 4.0, "UBQ", True),
)


def _pick(rng, frame: pd.DataFrame, codes: tuple[str, ...], target_m2: float, clustered: bool,
          taken: np.ndarray) -> np.ndarray:
    """Parcels of ``codes`` (not taken) adding up to about ``target_m2``: a block
    around a random seed when ``clustered``, else scattered ones."""
    candidates = np.flatnonzero(frame["KHLOAIDAT"].isin(codes).to_numpy() & ~taken)
    if not len(candidates):
        return candidates
    if clustered:
        xy = shapely.get_coordinates(shapely.point_on_surface(frame.geometry.values[candidates]))
        seed = xy[rng.integers(len(candidates))]
        order = candidates[np.argsort(np.hypot(*(xy - seed).T))]
    else:
        order = rng.permutation(candidates)
    area = frame.geometry.area.to_numpy()[order]
    count = int(np.searchsorted(np.cumsum(area), target_m2)) + 1
    return order[:count]


def previous_parcels(frame: gpd.GeoDataFrame, seed: int, commune_code: str,
                     avoid: frozenset[str] | set[str] = frozenset()) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """The 2019 parcels with their 2014 codes and owners, and the changes made.

    ``avoid``: "sheet/parcel" labels not to change (parcels carrying planted QA
    problems, whose 2019 area is not their drawn area)."""
    rng = np.random.default_rng([seed, int(commune_code), PREVIOUS_YEAR])
    code = frame["KHLOAIDAT"].to_numpy(dtype=object).copy()
    owner = frame["DOITUONG"].to_numpy(dtype=object).copy()
    labels = (frame["SHBANDO"].astype(str) + "/" + frame["SHTHUA"].astype(str)).to_numpy()
    taken = np.isin(labels, list(avoid))
    rows = []
    for name, codes_2019, code_2014, target_ha, owner_2014, clustered in CHANGES:
        picked = _pick(rng, frame, codes_2019, target_ha * 1e4, clustered, taken)
        taken[picked] = True
        area = frame.geometry.area.to_numpy()[picked]
        to = np.array([comparison_code(c, COLLAPSE) for c in code[picked]], dtype=object)
        for target in sorted(set(to)):
            rows.append({"commune_code": commune_code, "change": name,
                         "from_code": comparison_code(code_2014, COLLAPSE), "to_code": target,
                         "parcels": int((to == target).sum()), "area_m2": round(float(area[to == target].sum()), 3)})
        code[picked] = code_2014
        if owner_2014:
            owner[picked] = owner_2014
    unchanged = ~taken
    code[unchanged] = [FOREST_2014.get(c, c) for c in code[unchanged]]
    out = frame.assign(KHLOAIDAT=code, DOITUONG=owner)
    return out, pd.DataFrame(rows)


def compound_uses(codes, first_areas, areas) -> list[dict[str, float] | None]:
    """Each use's m² of a ``FIRST+SECOND`` code whose first use has
    ``first_areas`` m² (a ``DT_ONT`` column); None for a single code."""
    out: list[dict[str, float] | None] = []
    for code, first, area in zip(codes, first_areas, areas, strict=True):
        if "+" in code:
            one, two = code.split("+")
            out.append({one: float(first), two: float(area - first)})
        else:
            out.append(None)
    return out


def parcel_contract(frame: gpd.GeoDataFrame, commune_code: str) -> gpd.GeoDataFrame:
    """Generated FAMIS parcels in the columns the khoanh and change stages read."""
    uses = compound_uses(frame["KHLOAIDAT"], frame["DT_ONT"], frame.geometry.area.to_numpy())
    return gpd.GeoDataFrame({
        "commune_code": commune_code, "sheet_no": frame["SHBANDO"].to_numpy(),
        "parcel_no": frame["SHTHUA"].to_numpy(), "landuse": [c.split("+")[0] for c in frame["KHLOAIDAT"]],
        "owner_type": frame["DOITUONG"].to_numpy(), "uses": [json.dumps(u) if u else None for u in uses],
    }, geometry=frame.geometry.values, crs=frame.crs)


def previous_khoanh(parcels: gpd.GeoDataFrame, commune_code: str, commune_name: str) -> gpd.GeoDataFrame:
    """The 2014 khoanh layer of a commune: parcels merged by code and owner,
    with the attributes of a 2014 khoanh file (text as TCVN3 bytes)."""
    contract = parcel_contract(parcels, commune_code)
    khoanh = build_khoanh(contract, commune_code=commune_code)
    merged_uses = [json.loads(u) if isinstance(u, str) else {} for u in khoanh["uses"]]
    return gpd.GeoDataFrame({
        "MAXA": commune_code,
        "TENXA": encode_tcvn3(commune_name),
        "SOKHOANH": khoanh["khoanh_no"].astype(np.int32).to_numpy(),
        "MALOAIDAT": ["+".join(u) if u else c for c, u in zip(khoanh["landuse"], merged_uses, strict=True)],
        "DT_ONT": [round(u.get("ONT", u.get("ODT", 0.0)), 1) if u else 0.0 for u in merged_uses],
        "MADT": khoanh["owner_type"].to_numpy(),
        "DIENTICH": khoanh["area_m2"].round(1).to_numpy(),
        "GHICHU": encode_tcvn3(f"Kiểm kê đất đai năm {PREVIOUS_YEAR}"),
    }, geometry=khoanh.geometry.values, crs=parcels.crs)


def statistics_2018(parcels_2019: gpd.GeoDataFrame, changes: pd.DataFrame, commune_code: str,
                    seed: int) -> pd.DataFrame:
    """Areas of 2018 per code of the Biểu 14 level (ha, 2 decimals): the 2019
    parcels, with every other new house still paddy (not yet registered)."""
    area = parcels_2019.geometry.area.to_numpy()
    code = parcels_2019["KHLOAIDAT"].to_numpy(dtype=object)
    uses = compound_uses(code, parcels_2019["DT_ONT"], area)
    pairs = [(k, v) for c, a, u in zip(code, area, uses, strict=True) for k, v in (u or {c: float(a)}).items()]
    frame = pd.DataFrame(pairs, columns=["code", "area_m2"])
    frame["code"] = [comparison_code(c, COLLAPSE) for c in frame["code"]]
    totals = frame.groupby("code")["area_m2"].sum()
    houses = changes[changes["from_code"] == "LUA"]
    for row in houses.itertuples():
        moved = row.area_m2 / 2
        totals[row.to_code] -= moved
        totals["LUA"] = totals.get("LUA", 0.0) + moved
    return pd.DataFrame({"commune_code": commune_code, "code": totals.index,
                         "area_ha": (totals.to_numpy() / 1e4).round(2)})


def write_previous_layer(frames: list[gpd.GeoDataFrame], path: Path, meridian: float) -> list[Path]:
    """One shapefile in VN-2000 / UTM 48N, TCVN3 bytes, no .cpg (as archived)."""
    layer = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs)
    return write_archived_shapefile(layer, path, meridian)


def write_archived_shapefile(layer: gpd.GeoDataFrame, path: Path, meridian: float) -> list[Path]:
    """A layer (TM-3, text already TCVN3) as archives hold it: a shapefile in
    VN-2000 / UTM 48N with TCVN3 bytes and no .cpg."""
    utm = vn.reproject(layer.geometry.values, CRS.from_epsg(3405), meridian, inverse=True)
    layer = layer.set_geometry(list(utm), crs="EPSG:3405")
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f"{path.stem}.*"):
        old.unlink()
    pyogrio.write_dataframe(layer, path, driver="ESRI Shapefile", encoding="latin1",
                            layer_options={"RESIZE": "YES"})
    path.with_suffix(".cpg").unlink(missing_ok=True)
    return sorted(path.parent.glob(f"{path.stem}.*"))
