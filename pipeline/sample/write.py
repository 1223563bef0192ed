"""Writing the bundled sample: each commune in the raw form officers hold, the
2014 inventory's layer, the 2018 statistics, the planted problems, the
boundaries and the sample's README."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
from pyproj import CRS
from tqdm import tqdm

from .. import crs as vn
from ..io import atomic_path, write_csv, write_text
from ..report import markdown_table
from . import previous as sample_2014
from .generator import (
    DISTRICT_FOLDER,
    FORM_DESCRIPTIONS,
    PROVINCE,
    SAMPLE_COMMUNES,
    SampleCommune,
    _commune_polygon,
    commune_boundaries,
    generate_commune,
    with_planted_problems,
)

log = logging.getLogger(__name__)


def _write_raw(frame: gpd.GeoDataFrame, commune: SampleCommune, folder: Path) -> list[Path]:
    """Write one commune in its raw form; return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    meridian = PROVINCE.central_meridian_deg
    if commune.form == "geojson_wgs84":
        wgs = vn.reproject(frame.geometry.values, CRS.from_epsg(4326), meridian, inverse=True)
        path = folder / f"{commune.stem}.geojson"
        with atomic_path(path) as tmp:
            pyogrio.write_dataframe(frame.set_geometry(wgs, crs="EPSG:4326"), tmp, driver="GeoJSON",
                                    layer=commune.stem, layer_options={"COORDINATE_PRECISION": 10})
        return [path]
    if commune.form == "shp_utm48":
        utm = vn.reproject(frame.geometry.values, CRS.from_epsg(3405), meridian, inverse=True)
        frame = frame.set_geometry(utm, crs="EPSG:3405")
    if commune.form == "shp_noprj":
        frame = frame.set_crs(None, allow_override=True)
    path = folder / f"{commune.stem}.shp"
    for old in folder.glob(f"{commune.stem}.*"):
        old.unlink()
    pyogrio.write_dataframe(frame, path, driver="ESRI Shapefile", encoding="UTF-8",
                            layer_options={"RESIZE": "YES"})
    return sorted(folder.glob(f"{commune.stem}.*"))


def generate_sample(out: Path, *, seed: int = 2019) -> pd.DataFrame:
    """Write the bundled sample to ``out``; return one row per commune."""
    boundaries = commune_boundaries()
    rows, planted, layer_2014, changes, statistics = [], [], [], [], []
    for commune in tqdm(SAMPLE_COMMUNES, desc="sample communes", unit="commune"):
        clean = generate_commune(commune, boundaries, seed=seed)
        frame, problems = with_planted_problems(clean, commune, boundaries, seed=seed)
        planted.append(problems)
        name = boundaries.loc[boundaries["gso_commune_code"] == commune.code, "commune_vn"].iloc[0]
        avoid = {p.strip() for text in problems.get("parcels", []) for p in text.split("&")}
        parcels_2014, changed = sample_2014.previous_parcels(clean, seed, commune.code, avoid)
        layer_2014.append(sample_2014.previous_khoanh(parcels_2014, commune.code, name))
        changes.append(changed)
        statistics.append(sample_2014.statistics_2018(clean, changed, commune.code, seed))
        folder = out / DISTRICT_FOLDER / commune.folder
        files = _write_raw(frame, commune, folder)
        rows.append({
            "commune_code": commune.code,
            "commune": name,
            "folder": folder.relative_to(out).as_posix(),
            "form": FORM_DESCRIPTIONS[commune.form],
            "parcels": len(frame),
            "area_ha": round(frame.geometry.area.sum() / 1e4, 2),
            "codes": ", ".join(sorted(frame["KHLOAIDAT"].unique())),
            "files": ", ".join(p.name for p in files),
        })
    summary = pd.DataFrame(rows)
    problems = pd.concat(planted, ignore_index=True)
    problems = problems[["commune_code", *[c for c in problems.columns if c != "commune_code"]]]
    write_csv(out / "planted_problems.csv", problems)
    previous = out / sample_2014.PREVIOUS_FOLDER
    sample_2014.write_previous_layer(layer_2014, previous / "HTSD_2014_VanQuan.shp", PROVINCE.central_meridian_deg)
    write_csv(previous / "changes_2014_2019.csv", pd.concat(changes, ignore_index=True)[
        ["commune_code", "change", "from_code", "to_code", "parcels", "area_m2"]])
    write_csv(out / f"thong_ke_{sample_2014.STATISTICS_YEAR}.csv", pd.concat(statistics, ignore_index=True))
    _write_boundaries(boundaries, out / "boundaries" / "communes_van_quan.geojson")
    write_text(out / "README.md", sample_readme(summary, problems, pd.concat(changes, ignore_index=True)))
    log.info("sample written to %s: %d communes, %d parcels", out, len(summary), summary["parcels"].sum())
    return summary


def _write_boundaries(boundaries: gpd.GeoDataFrame, path: Path) -> None:
    """The sample communes' boundaries exactly as the parcels were generated in
    (snapped to 1 cm in TM-3), written back in WGS 84 like the source."""
    sample = boundaries[boundaries["gso_commune_code"].isin([c.code for c in SAMPLE_COMMUNES])].copy()
    tm3 = [_commune_polygon(boundaries, code) for code in sample["gso_commune_code"]]
    wgs = vn.reproject(np.array(tm3, dtype=object), CRS.from_epsg(4326), PROVINCE.central_meridian_deg, inverse=True)
    sample = sample.set_geometry(list(wgs), crs="EPSG:4326")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pyogrio.write_dataframe(sample, tmp, driver="GeoJSON", layer="communes_van_quan",
                                layer_options={"COORDINATE_PRECISION": 10})


def sample_readme(summary: pd.DataFrame, problems: pd.DataFrame, changes: pd.DataFrame) -> str:
    table = markdown_table(summary[["commune_code", "commune", "folder", "parcels", "area_ha", "form"]])
    documented = changes.assign(area_ha=(changes["area_m2"] / 1e4).round(2)).drop(columns="area_m2")
    planted_in = ", ".join(sorted(problems["commune_code"].unique())) if len(problems) else "—"
    return f"""# Bundled sample: {len(summary)} communes of Huyện Văn Quan, Lạng Sơn

Synthetic cadastral parcels (thửa đất) drawn inside the **real** 2019 boundaries
of communes of Văn Quan district, generated by `kiemke sample` (deterministic,
seed 2019). Nothing here is real cadastral data: owners' names, parcel
numbers and land uses are made up; the commune outlines are real.

{table}

Total: {summary['parcels'].sum()} parcels, {summary['area_ha'].sum():.2f} ha.

## What the files look like
- Columns as in FAMIS/ViLIS exports: `MAXA` (commune code), `SHBANDO` (sheet),
  `SHTHUA` (parcel), `DIENTICH` (recorded area, m², rounded), `KHLOAIDAT`
  (land-use code), `DT_ONT` (residential area of an `ONT+CLN`/`ODT+CLN`
  parcel, m²), `TENCHU` (owner), `DOITUONG` (user/manager object code).
- Land uses: production forest (RST/RSN) and protection forest (RPN/RPT) on
  the hills, karst tops (NCS) with unused hill land (DCS) around them, paddy
  (LUC/LUK) and ponds (NTS) in the valleys, perennial and annual crops
  (CLN/BHK) on the slopes, houses with gardens (ONT, ODT in the town,
  `ONT+CLN`) along roads (DGT), a river (SON), cemeteries (NTD), schools
  (DGD), a health station (DYT), the commune office (TSC), a cultural house
  (DSH), a shop (TMD), a market (DCH) and scattered unused land (BCS).
- Owners: households (GDC), the commune People's Committee managing roads,
  rivers and unused land (UBQ), the protection-forest board (TCN), public
  schools and health stations (TSN), a forestry company (TKT), village
  communities (CDS).
- Parcels tile each commune: no gaps, no overlaps inside a commune, except the
  problems planted on purpose (below).
- `boundaries/communes_van_quan.geojson`: the communes' boundaries (the
  source polygons snapped to 1 cm in VN-2000 TM-3, as the parcels were made).
  The source polygons are low-resolution and overlap their neighbours a
  little, so parcels of adjacent communes can overlap along the border.

## Problems planted on purpose (for the QA to find)
Commune {planted_in} carries these topology problems, and only these
(also in `planted_problems.csv`); `kiemke qa` finds exactly them (a test
checks it). X = northing, Y = easting in VN-2000 / TM-3 107°15′:

{markdown_table(problems) if len(problems) else "(none)"}

## The previous inventory (2014) and the 2018 statistics
`kiem_ke_2014/HTSD_2014_VanQuan.shp` is the district's 2014 current-use map as
archives hold it: one shapefile of khoanh (parcels merged by code and user),
VN-2000 / UTM zone 48N, text in TCVN3 bytes with no `.cpg`, 2014 codes (no
forest sub-codes: RSX, RPH). Columns: `MAXA`, `TENXA`, `SOKHOANH`, `MALOAIDAT`,
`DT_ONT`, `MADT`, `DIENTICH` (m²), `GHICHU`. It was derived from the 2019
parcels with these changes, and only these (also in
`kiem_ke_2014/changes_2014_2019.csv`; codes at Biểu 14's level; a test finds
each with its area):

{markdown_table(documented)}

`thong_ke_{sample_2014.STATISTICS_YEAR}.csv` (`commune_code, code, area_ha`) are the 2018
statistics: the 2019 areas with half of the new houses not yet counted.

## Attribution
Commune boundaries: derived from the R package `censusVN2009`
(github.com/LucieContamin/censusVN2009), MIT licence, © 2017 Marc Choisy,
with official GSO codes added.
"""
