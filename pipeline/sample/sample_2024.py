"""The bundled sample as a 2024 inventory (Circular 08/2024, data as at
31/12/2024, on the communes of 1 July 2025): the sample's parcels with 2024
codes (the 2018 codes moved through the regime's migration table, objects
GDC → CNV, UBQ → TCQ …), a documented set of changes since 2019 (new houses,
a concentrated livestock farm, a river dike), cut by the new communes, one
FAMIS-style shapefile per new commune, and the new communes' boundaries
where the sample has parcels."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from ..config import NewUnits
from ..io import write_csv, write_text
from ..reference import migrated_code, migration_table
from ..regime import REGIME_2024
from ..regroup import load_new_units, regroup
from ..report import markdown_table
from ..vntext import fold
from .generator import PROVINCE, SAMPLE_COMMUNES, commune_boundaries, generate_commune

log = logging.getLogger(__name__)

BOUNDARIES = Path("boundaries") / "xa_2025_mau.gpkg"  # under the 2024 sample folder
CHANGES = "bien_dong_2019_2024.csv"
HOUSES_PER_COMMUNE = 3
DIKE_PARCELS = 6
FARM = ("06274", "Công ty TNHH Chăn nuôi Hòa Bình", "TKT")  # old commune, owner, object of the new farm


def migrate_code(code: str, kind: str = "landuse") -> str:
    """A 2018 code as the 2024 sample writes it (for a code needing field data,
    the table's default stands for the sample's field truth)."""
    return migrated_code(code, kind, REGIME_2024)


def _touching(frame: gpd.GeoDataFrame, candidates: np.ndarray, codes: tuple[str, ...]) -> np.ndarray:
    """The candidates (row positions) that touch a parcel with one of ``codes``."""
    others = frame.geometry.values[np.flatnonzero(frame["KHLOAIDAT"].isin(codes).to_numpy())]
    tree = shapely.STRtree(others)
    hits, _ = tree.query(frame.geometry.values[candidates], predicate="intersects")
    return candidates[np.unique(hits)]


def _change(frame: gpd.GeoDataFrame, rows: np.ndarray, code: str, what: str, owner: str | None = None,
            name: str | None = None) -> dict:
    before = frame.iloc[rows]
    record = {"commune_code": str(frame["MAXA"].iat[0]), "change": what,
              "from_code": ", ".join(sorted(before["KHLOAIDAT"].unique())), "to_code": code,
              "parcels": " & ".join(f"{s}/{p}" for s, p in zip(before["SHBANDO"], before["SHTHUA"], strict=True)),
              "area_m2": round(float(before.geometry.area.sum()), 1)}
    frame.iloc[rows, frame.columns.get_loc("KHLOAIDAT")] = code
    frame.iloc[rows, frame.columns.get_loc("DT_ONT")] = 200.0 if code.startswith("ONT+") else 0.0
    if owner:
        frame.iloc[rows, frame.columns.get_loc("DOITUONG")] = owner
    if name:
        frame.iloc[rows, frame.columns.get_loc("TENCHU")] = name
    return record


def changes_since_2019(frame: gpd.GeoDataFrame, rng: np.random.Generator) -> list[dict]:
    """Apply the sample's 2019 → 2024 changes to one commune's (2024-coded) parcels; return them."""
    code = str(frame["MAXA"].iat[0])
    done = []
    gardens = np.flatnonzero(frame["KHLOAIDAT"].isin(["CLN", "HNK"]).to_numpy()
                             & (frame.geometry.area.to_numpy() < 2500))
    roadside = _touching(frame, gardens, ("DGT",))
    if len(roadside):
        houses = rng.choice(roadside, size=min(HOUSES_PER_COMMUNE, len(roadside)), replace=False)
        done += [_change(frame, np.array([i]), "ONT+CLN", "nhà ở mới xây") for i in sorted(houses)]
    if code == FARM[0]:
        fields = np.flatnonzero(frame["KHLOAIDAT"].eq("HNK").to_numpy() & (frame.geometry.area.to_numpy() > 2000))
        done.append(_change(frame, fields[:1], "CNT", "trang trại chăn nuôi tập trung", FARM[2], FARM[1]))
    if code == "06286":
        paddies = np.flatnonzero(frame["KHLOAIDAT"].isin(["LUC", "LUK"]).to_numpy())
        riverside = _touching(frame, paddies, ("SON",))[:DIKE_PARCELS]
        if len(riverside):
            done.append(_change(frame, riverside, "DPC", "đê kè chống sạt lở bờ sông", "TCQ",
                                "UBND xã (quản lý công trình đê điều)"))
    return done


def parcels_2024(seed: int) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Every sample commune's clean parcels with 2024 codes and the changes since 2019."""
    boundaries = commune_boundaries()
    frames, changes = [], []
    for rank, commune in enumerate(SAMPLE_COMMUNES, start=1):
        frame = generate_commune(commune, boundaries, seed=seed)
        frame["KHLOAIDAT"] = frame["KHLOAIDAT"].map(migrate_code)
        frame["DOITUONG"] = frame["DOITUONG"].map(lambda c: migrate_code(c, "owner"))
        frame["SHBANDO"] = rank * 100 + frame["SHBANDO"]  # sheet numbers stay unique in a new commune
        changes += changes_since_2019(frame, np.random.default_rng([seed, int(commune.code), 2024]))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), pd.DataFrame(changes)


def on_new_units(parcels: gpd.GeoDataFrame, units_file: Path) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The parcels cut by the communes of 1 July 2025 (as the regroup stage cuts
    them: same provisional codes), and each new commune's outline where the
    sample has parcels (the 2024 run's boundaries)."""
    spec = NewUnits(label="2025", path=units_file, name_field="name", levels=("xa", "tinh"))
    units = load_new_units(spec, PROVINCE.central_meridian_deg)
    frame = parcels.rename(columns={"MAXA": "commune_code", "SHBANDO": "sheet_no", "SHTHUA": "parcel_no"})
    frame["area_m2"] = frame.geometry.area
    frame["uses"] = None
    pieces, _ = regroup(frame, units, order=("sheet_no", "parcel_no"))
    pieces["DIENTICH"] = pieces.geometry.area.round(0)
    outlines = pieces.dissolve("commune_code").reset_index()
    names = dict(zip(units["unit_code"], units["unit_name"], strict=True))
    bounds = gpd.GeoDataFrame({"gso_commune_code": outlines["commune_code"],
                               "commune_vn": outlines["commune_code"].map(names),
                               "gso_district_code": "", "district_vn": ""},
                              geometry=outlines.geometry.values, crs=pieces.crs)
    return pieces, bounds


def write_sample_2024(out: Path, units_file: Path, *, seed: int = 2019) -> pd.DataFrame:
    """Write the 2024 sample to ``out``; return one row per new commune."""
    parcels, changes = parcels_2024(seed)
    pieces, bounds = on_new_units(parcels, units_file)
    rows = []
    for (code, name), part in pieces.groupby([pieces["commune_code"], pieces["commune_code"].map(
            dict(zip(bounds["gso_commune_code"], bounds["commune_vn"], strict=True)))]):
        folder = out / "xa_2025" / fold(name)
        folder.mkdir(parents=True, exist_ok=True)
        layer = gpd.GeoDataFrame({"MAXA": code, "SHBANDO": part["sheet_no"].astype(np.int32),
                                  "SHTHUA": part["parcel_no"].astype(np.int32), "DIENTICH": part["DIENTICH"],
                                  "KHLOAIDAT": part["KHLOAIDAT"], "DT_ONT": part["DT_ONT"],
                                  "TENCHU": part["TENCHU"], "DOITUONG": part["DOITUONG"]},
                                 geometry=part.geometry.values, crs=pieces.crs)
        path = folder / f"TD_{code}.shp"
        for old in folder.glob(f"TD_{code}.*"):
            old.unlink()
        pyogrio.write_dataframe(layer, path, driver="ESRI Shapefile", encoding="UTF-8",
                                layer_options={"RESIZE": "YES"})
        rows.append({"commune_code": code, "commune": name, "folder": folder.relative_to(out).as_posix(),
                     "parcels": len(part), "area_ha": round(part.geometry.area.sum() / 1e4, 2),
                     "codes": ", ".join(sorted(part["KHLOAIDAT"].unique()))})
    (out / BOUNDARIES).parent.mkdir(parents=True, exist_ok=True)
    (out / BOUNDARIES).unlink(missing_ok=True)
    pyogrio.write_dataframe(bounds, out / BOUNDARIES, driver="GPKG", layer="xa_2025_mau")
    write_csv(out / CHANGES, changes)
    summary = pd.DataFrame(rows)
    write_text(out / "README.md", readme_2024(summary, changes))
    log.info("2024 sample written to %s: %d new communes, %d parcels", out, len(summary), summary["parcels"].sum())
    return summary


def readme_2024(summary: pd.DataFrame, changes: pd.DataFrame) -> str:
    """The 2024 sample's README (Vietnamese-facing tables, English prose like the 2019 sample's)."""
    moved = migration_table("landuse", REGIME_2024)
    moved = moved[moved["rule"].isin(["merge", "review"])]
    return "\n".join([
        "# Bundled sample as a 2024 inventory (Circular 08/2024)", "",
        "Generated by `kiemke sample` from the same synthetic parcels as `data/raw/sample` (seed 2019), "
        "written as the 2024 inventory would have them: codes of Circular 08/2024, on the communes of "
        "1 July 2025 (OpenStreetMap boundaries, ODbL: © OpenStreetMap contributors; only where the sample "
        "has parcels, in `boundaries/xa_2025_mau.gpkg`), one FAMIS-style shapefile per new commune "
        "(VN-2000 / TM-3 107°15′ with .prj, UTF-8). Nothing here is real cadastral data.", "",
        "`inventory_2024.toml` runs it (`make inventory-2024`) with the 2019 inventory regrouped onto the "
        "new communes (`data/processed/units_2025/khoanh_dat_2025.gpkg`) as `[previous]`.", "",
        "## New communes", "", markdown_table(summary), "",
        "## Codes moved from Circular 27/2018", "",
        "Every 2018 code went through `pipeline/reference/tt08_2024/landuse_migration.csv`; "
        "objects through `owner_migration.csv` (GDC → CNV, UBQ → TCQ). The moves that changed a code:", "",
        markdown_table(moved[["code_2018", "code_2024", "rule", "confidence"]].reset_index(drop=True)), "",
        "## Changes 2019 → 2024 (the truth the change stage should find)", "",
        markdown_table(changes), "",
        f"{len(changes)} changes; areas in m² of the parcels before the cut by the new communes; parcels as "
        "sheet/parcel of the 2024 files (sheet = 100 × the old commune's rank + its 2019 sheet).", ""])
