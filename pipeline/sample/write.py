"""Writing the bundled sample: each commune in the raw form officers hold, the
2014 inventory's layer, the 2018 statistics, the planted problems, the
boundaries and the sample's README."""

from __future__ import annotations

import logging
from importlib import resources
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
from .export import forest_status_map, write_forest_map, write_web_export
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
FOREST_MAP = "hien_trang_rung/HTR_VanQuan.shp"  # the forest status map, under the sample folder


def _write_raw(frame: gpd.GeoDataFrame, commune: SampleCommune, folder: Path, name: str, seed: int) -> list[Path]:
    """Write one commune in its raw form; return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    meridian = PROVINCE.central_meridian_deg
    if commune.form == "web_export":
        rng = np.random.default_rng([seed, int(commune.code), 7])
        return write_web_export(frame, folder / f"thuadat_{commune.folder}.geojson", rng, name, meridian)
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
    rows, planted, layer_2014, changes, statistics, forest = [], [], [], [], [], []
    for commune in tqdm(SAMPLE_COMMUNES, desc="bộ mẫu", unit="xã"):
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
        files = _write_raw(frame, commune, folder, name, seed)
        if commune.form == "web_export":
            forest.append(forest_status_map(clean))
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
    write_units_2025(boundaries, out / UNITS_2025)
    write_forest_map(forest, out / FOREST_MAP, PROVINCE.central_meridian_deg)
    write_text(out / "README.md", sample_readme(summary, problems, pd.concat(changes, ignore_index=True)))
    log.info("sample written to %s: %d communes, %d parcels", out, len(summary), summary["parcels"].sum())
    return summary


UNITS_2025 = Path("boundaries") / "xa_2025_van_quan.geojson"


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


def write_units_2025(boundaries: gpd.GeoDataFrame, path: Path) -> None:
    """The communes of 1 July 2025 (OpenStreetMap, ODbL) that cover the sample's
    communes, as the source has them: for the regroup stage ([units])."""
    with (resources.files("pipeline") / "data" / "langson_communes_2025_osm.geojson").open("rb") as fh:
        units = pyogrio.read_dataframe(fh)
    sample = boundaries[boundaries["gso_commune_code"].isin([c.code for c in SAMPLE_COMMUNES])]
    covered = units[units.intersects(sample.to_crs(units.crs).union_all())]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pyogrio.write_dataframe(covered.reset_index(drop=True), tmp, driver="GeoJSON", layer=path.stem,
                                layer_options={"COORDINATE_PRECISION": 7})


def sample_readme(summary: pd.DataFrame, problems: pd.DataFrame, changes: pd.DataFrame) -> str:
    """The sample's README: ``sample/README.template.md`` with the sample's tables."""
    template = (resources.files("pipeline") / "sample" / "README.template.md").read_text(encoding="utf-8")
    documented = changes.assign(area_ha=(changes["area_m2"] / 1e4).round(2)).drop(columns="area_m2")
    return template.format(
        communes=len(summary), parcels=summary["parcels"].sum(), area_ha=f"{summary['area_ha'].sum():.2f}",
        table=markdown_table(summary[["commune_code", "commune", "folder", "parcels", "area_ha", "form"]]),
        planted_in=", ".join(sorted(problems["commune_code"].unique())) if len(problems) else "—",
        problems=markdown_table(problems) if len(problems) else "(none)", documented=markdown_table(documented),
        statistics_year=sample_2014.STATISTICS_YEAR)
