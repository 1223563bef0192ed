"""The ingest core: one source frame mapped to the parcel contract (pure).

Nothing is lost: every input feature ends in the parcels or in the
quarantine with a ``reason``; the report checks that area in = area out +
area quarantined. Each step below fills in the ``reason`` of the rows it
refuses (the first reason wins) and returns what it found.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .. import crs as vn
from ..config import Settings
from ..regime import active_regime
from ..schemas import PARCEL_COLUMNS
from ..topology import polygonal
from .codes import (
    REFINED_NOTE,
    REGIME_NAMES,
    Refinements,
    coded_under_previous_regime,
    normalise_code,
    normalise_landuse,
    resolve_compound,
    split_compound,
)
from .columns import detect_landuse_column, find_column, map_columns, sheet_in_name
from .corrections import apply_corrections
from .linework import REASON_COLUMN
from .owners import FROM_CONFIG, FROM_CORRECTION, FROM_FILE, infer_owners, migrate_owners, valid_owner_codes
from .place import feature_communes
from .refine import CORRECTED, DEFAULT_NOTE, default_rules
from .report import FileReport, inference_counts
from .text import map_unique
from .values import join_flag, parse_numbers, text_values

#: A recorded area (DIENTICH) further than this from the computed one is flagged.
RECORDED_AREA_TOLERANCE = 0.10
#: A "parcel" larger than this (100 km²) is a digitising error (a frame, a sheet outline).
MAX_PARCEL_M2 = 1e8
#: Start of the flag set on a parcel whose geometry make_valid repaired.
INVALID_FLAG = "invalid geometry repaired"
#: The contract columns a quarantined row keeps beside its original attributes (for the review workbook).
QUARANTINE_COLUMNS = ["commune_code", "sheet_no", "parcel_no", "landuse_raw", "owner_name", "source_file"]


@dataclass
class Geometry:
    """The geometry step's result: projected polygons, their area, and the
    note of each repaired one."""

    projected: np.ndarray
    area: np.ndarray
    invalid_why: np.ndarray


@dataclass
class Codes:
    """The land-use step's result per row: the raw code, its main leaf, its uses,
    how a group code was refined (or None), the candidates of a refused code."""

    raw: pd.Series
    main: pd.Series
    parts: pd.Series
    refined: np.ndarray
    candidates: np.ndarray


@dataclass(frozen=True)
class Rules:
    """What the config and the officer say about one file's values."""

    commune_code: str | None = None  # the config's commune code: wins over the file's
    unnamed: str | None = None  # the name of features whose commune nothing says (default: the file's name)
    accept_codes: frozenset[str] = frozenset()  # group codes kept as they are (a previous inventory's)
    refine: Refinements = ()  # group code → leaf
    infer_owner: bool = True  # False: quarantine blank objects ([refine] strict) or keep them (previous layer)
    require_owner: bool = True
    owner_default: str | None = None  # the [[sources]] owner_type
    corrections: pd.DataFrame | None = field(default=None, compare=False)  # see ingest.corrections
    #: The commune boundaries (TM-3) that place a file's parcels when no code is given; read when needed.
    communes: Callable[[], gpd.GeoDataFrame] | None = field(default=None, compare=False)


def _place_geometry(frame: gpd.GeoDataFrame, source_crs: vn.SourceCRS, meridian: float, reason: np.ndarray,
                    report: FileReport) -> Geometry:
    """Finite 2-D coordinates reprojected to TM-3; polygons only, repaired when invalid."""
    geoms = np.array(frame.geometry.values, dtype=object, copy=True)  # repaired below; the input stays as it is
    geoms[pd.isna(geoms)] = None
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    finite = np.ones(len(frame), dtype=bool)
    if present.any():
        coords, owner = shapely.get_coordinates(geoms[present], include_z=True, return_index=True)
        bad = ~np.isfinite(coords[:, :2]).all(axis=1)
        finite[np.flatnonzero(present)[np.unique(owner[bad])]] = False
        has_z = shapely.has_z(geoms[present])
        if has_z.any():
            geoms[np.flatnonzero(present)[has_z]] = shapely.force_2d(geoms[np.flatnonzero(present)[has_z]])
            report.repairs["Z (height) coordinates dropped"] = int(has_z.sum())
    reason[~finite] = "coordinates are NaN or infinite"
    geoms[~finite] = None
    projected = vn.reproject(source_crs.prepare(geoms), source_crs.crs, meridian)

    empty = (reason == "") & (shapely.is_missing(projected) | shapely.is_empty(projected))
    reason[empty] = "empty geometry"
    kind = shapely.get_type_id(projected)
    collection = (reason == "") & (kind == 7)
    if collection.any():  # keep the polygons of a GeometryCollection
        projected[collection] = [polygonal(g) for g in projected[collection]]
        report.repairs["polygons taken out of a GeometryCollection"] = int(collection.sum())
        kind = shapely.get_type_id(projected)
    not_polygon = (reason == "") & ~np.isin(kind, [3, 6])
    reason[not_polygon] = [f"not a polygon ({g.geom_type})" for g in projected[not_polygon]]
    invalid = (reason == "") & ~shapely.is_valid(projected)
    invalid_why = np.full(len(frame), None, dtype=object)
    if invalid.any():
        invalid_why[invalid] = [f"{INVALID_FLAG} ({why})" for why in shapely.is_valid_reason(projected[invalid])]
        projected[invalid] = [polygonal(g) for g in shapely.make_valid(projected[invalid])]
        report.repairs["invalid geometry repaired (make_valid)"] = int(invalid.sum())
    no_area = (reason == "") & (shapely.is_empty(projected) | (shapely.area(projected) <= 0))
    reason[no_area] = "geometry has no area"
    huge = (reason == "") & (shapely.area(projected) > MAX_PARCEL_M2)
    reason[huge] = [f"implausibly large for a parcel ({a / 1e4:,.0f} ha)" for a in shapely.area(projected[huge])]
    area = np.where(shapely.is_missing(projected), 0.0, shapely.area(projected))
    return Geometry(projected, area, invalid_why)


def _landuse(data: pd.DataFrame, column: str | None, rules: Rules, corrected: pd.Series, reason: np.ndarray,
             report: FileReport) -> Codes:
    """Land-use values read as codes (names too), corrected by the officer,
    mapped and refined: once per distinct value (a province has a few hundred)."""
    if column is None:
        if len(data):
            report.warn("no land-use column found (KHLOAIDAT, MDSD, Loai_dat, mucDichSuDung …); add its name under "
                        "[columns] landuse in inventory.toml")
        values = pd.Series([""] * len(data), index=data.index)
    else:
        values = data[column]
    parsed = map_unique(values, normalise_landuse)
    raw = pd.Series([p[0] if p else "" for p in parsed], index=data.index, dtype=object)
    named = np.array([bool(p and p[1]) for p in parsed])
    if named.any():
        report.repairs["land use written as names, read as codes"] = int(named.sum())
    corrected = pd.Series(corrected.to_numpy(), index=data.index)
    raw = raw.mask(corrected.notna(), corrected)
    blank = raw.eq("").to_numpy()
    reason[blank & (reason == "")] = "blank land-use code"
    distinct = [code for code in pd.unique(raw) if code]
    older = coded_under_previous_regime(distinct)
    if older:
        report.repairs[f"codes of Circular 27/2018 in the file ({older}): migrated"] = len(data)
    decoded = {code: resolve_compound(code, rules.accept_codes, rules.refine, bool(older)) for code in distinct}
    refusal = raw.map({code: d.refusal for code, d in decoded.items()}).astype(object).fillna("").to_numpy()
    mask = (refusal != "") & ~blank & (reason == "")
    reason[mask] = refusal[mask]
    counts = raw[reason == ""].value_counts()
    for code, d in decoded.items():
        for note in d.notes:
            if not note.startswith(REFINED_NOTE):
                report.repairs[note] = report.repairs.get(note, 0) + int(counts.get(code, 0))
    refined = raw.map({code: d.refined for code, d in decoded.items()}).astype(object).fillna("")
    refined = refined.map(lambda r: f"{r} ({DEFAULT_NOTE})" if r else None).where(corrected.isna(), CORRECTED)
    return Codes(raw, raw.map({code: d.codes[0] for code, d in decoded.items()}).astype(object).fillna(""),
                 raw.map({code: d.codes for code, d in decoded.items()}), refined.to_numpy(dtype=object),
                 raw.map({code: d.candidates for code, d in decoded.items()}).astype(object).fillna("").to_numpy())


def _owner(data: pd.DataFrame, columns: dict[str, str], codes: Codes, rules: Rules, corrected: pd.Series,
           reason: np.ndarray, report: FileReport) -> pd.DataFrame:
    """User/manager object codes, how each was found and by which rule: the
    file's code, else inferred (names, land use, config, default) unless
    strict; an unknown code is refused; the officer's correction wins."""
    valid = valid_owner_codes()
    column = columns.get("owner_type")
    owner = normalise_code(data[column]) if column else pd.Series([""] * len(data), index=data.index)
    out = pd.DataFrame({"owner_type": owner.to_numpy(dtype=object), "owner_source": FROM_FILE, "owner_rule": ""},
                       index=data.index)
    blank = owner.eq("").to_numpy()
    if rules.infer_owner and blank.any():
        names = (data[columns["owner_name"]] if "owner_name" in columns
                 else pd.Series([None] * len(data), index=data.index, dtype=object))
        out.loc[blank] = infer_owners(names[blank], codes.main[blank], rules.owner_default).to_numpy()
    elif rules.owner_default and blank.any():  # strict: the config fills blanks, as a value of the file
        out.loc[blank, ["owner_type", "owner_source", "owner_rule"]] = [rules.owner_default, FROM_CONFIG, "config"]
    out, moves = migrate_owners(out)
    for note, count in moves.items():
        report.repairs[note] = report.repairs.get(note, 0) + count
    corrected = pd.Series(corrected.to_numpy(), index=data.index)
    out.loc[corrected.notna(), ["owner_source", "owner_rule"]] = [FROM_CORRECTION, ""]
    out["owner_type"] = out["owner_type"].mask(corrected.notna(), corrected)
    if rules.require_owner:
        mask = (reason == "") & out["owner_type"].eq("").to_numpy()
        reason[mask] = "blank user/manager object code (DOITUONG)"
        mask = (reason == "") & ~out["owner_type"].isin(valid).to_numpy()
        reason[mask] = [f"user/manager object code {c!r} is not in the {REGIME_NAMES.get(active_regime())} list"
                        for c in out["owner_type"][mask]]
    return out


def _compound_uses(data: pd.DataFrame, codes: Codes, area: np.ndarray, settings: Settings, reason: np.ndarray,
                   report: FileReport) -> np.ndarray:
    """Per compound parcel, the m² of each use as JSON (None for a single use)."""
    uses = np.full(len(data), None, dtype=object)
    compound = np.flatnonzero((reason == "") & codes.raw.str.contains("+", regex=False).to_numpy())
    if not len(compound):
        return uses
    members = {code for i in compound for code in codes.parts.iat[i]}
    fields = {code: [c for c in (find_column(data, f) for f in (*settings.compound.area_fields.get(code, ()),
                                                                 f"DT_{code}")) if c is not None]
              for code in members}
    numbers = {c: pd.to_numeric(data[c], errors="coerce").to_numpy(dtype=float)
               for c in {c for cs in fields.values() for c in cs}}
    for i in compound:
        known = {}
        for code in codes.parts.iat[i]:
            value = next((numbers[c][i] for c in fields[code] if np.isfinite(numbers[c][i]) and numbers[c][i] > 0),
                         None)
            if value is not None:
                known[code] = float(value)
        uses[i] = json.dumps(split_compound(codes.parts.iat[i], float(area[i]), known, settings.compound.first_use_m2))
    report.repairs["compound codes split into uses"] = len(compound)
    return uses


def _recorded_area(data: pd.DataFrame, column: str | None, geometry: Geometry, keep: np.ndarray,
                   report: FileReport) -> tuple[np.ndarray, np.ndarray]:
    """The recorded area (DIENTICH) and the parcel flags: repaired geometry, an
    area missing or more than 10 % (and 5 m²) off the computed one."""
    area = geometry.area
    recorded, dates = parse_numbers(data[column]) if column else (np.full(len(data), np.nan), np.zeros(0, bool))
    if dates.any():
        report.repairs["recorded areas read back from spreadsheet dates (01/05/1783 → 1783.5 m²)"] = int(dates.sum())
    flags = geometry.invalid_why.copy()
    if column:
        garbage = keep & (~np.isfinite(recorded) | (recorded <= 0) | (
            (np.abs(recorded - area) > RECORDED_AREA_TOLERANCE * area) & (np.abs(recorded - area) > 5.0)))
        flags[garbage] = [join_flag(f, f"recorded area {r:g} m² ≠ computed {a:.1f} m²")
                          for f, r, a in zip(flags[garbage], recorded[garbage], area[garbage], strict=True)]
        if garbage.any():
            report.flagged["recorded area missing or more than 10 % off"] = int(garbage.sum())
    return recorded, flags


def _account(report: FileReport, area: np.ndarray, keep: np.ndarray, reason: np.ndarray) -> None:
    """Counts and areas in / out / quarantined, by reason."""
    report.features_in += len(keep)
    report.features_out += int(keep.sum())
    report.features_quarantined += int((~keep).sum())
    report.area_in_m2 += float(area.sum())
    report.area_out_m2 += float(area[keep].sum())
    report.area_quarantined_m2 += float(area[~keep].sum())
    kinds = pd.DataFrame({"reason": pd.Series(reason[~keep], dtype=object).str.replace(
        r" '[^']*'| \(.*\)", "", regex=True), "area_m2": area[~keep]})
    for r, group in kinds.groupby("reason"):
        entry = report.quarantined_by_reason.setdefault(r, {"features": 0, "area_m2": 0.0})
        entry["features"] += len(group)
        entry["area_m2"] += float(group["area_m2"].sum())


def _usable_code(value: object) -> bool:
    """True when a value reads as a code (or name) kiemke can count: a leaf, a
    legacy code with one target, a group code with a refinement rule (not
    LNP = "Đất lâm nghiệp", a map type of some exports)."""
    code = normalise_landuse(value)[0]
    return bool(code) and not resolve_compound(code, frozenset(), tuple(sorted(default_rules().items()))).refusal


def find_columns(frame: pd.DataFrame, settings: Settings) -> tuple[dict[str, str], str]:
    """Contract field → the source column holding it (:func:`map_columns`), the
    land use found from the values where no name says it; and then why."""
    columns = map_columns(frame, settings.column_aliases)
    if "landuse" in columns:
        return columns, ""
    found, why = detect_landuse_column(frame.drop(columns="geometry"), set(columns.values()), _usable_code)
    return ({**columns, "landuse": found}, why) if found else (columns, "")


def ingest_frame(frame: gpd.GeoDataFrame, *, source_file: str, source_crs: CRS | vn.SourceCRS, settings: Settings,
                 rules: Rules = Rules()) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, FileReport]:
    """Map one source frame to the parcel contract (pure: no I/O, the input untouched).

    Returns ``(parcels, quarantine, report)``; every input row is in exactly one
    of the two frames, the quarantine with its original attributes and ``reason``.
    ``rules`` says what the config and the officer add: the commune code,
    group codes kept or refined, how to find a missing user/manager object,
    the officer's corrections.
    """
    report = FileReport(path=source_file)
    reason = np.full(len(frame), "", dtype=object)
    if REASON_COLUMN in frame.columns:  # given before (parcels built from lines)
        reason[:] = frame[REASON_COLUMN].fillna("").to_numpy()
        frame = frame.drop(columns=REASON_COLUMN)
    columns, why = find_columns(frame, settings)
    data = frame.drop(columns="geometry")
    if why:
        report.repairs[why] = len(data)
    if not isinstance(source_crs, vn.SourceCRS):
        source_crs = vn.SourceCRS(source_crs, "given")

    geometry = _place_geometry(frame, source_crs, settings.province.central_meridian_deg, reason, report)
    column = columns.get("commune_code")
    commune, commune_flags = feature_communes(
        data[column] if column else None, column, given=rules.commune_code,
        unnamed=rules.unnamed or Path(source_file).stem, projected=geometry.projected, valid=reason == "",
        area=geometry.area, communes=rules.communes, report=report)
    sheets = _sheets(data, columns.get("sheet_no"), source_file, report)
    parcel_numbers = _text(data, columns.get("parcel_no"))
    corrected, report.corrections_used = apply_corrections(
        rules.corrections, data["source_fid"].to_numpy(), commune.to_numpy(dtype=object), sheets, parcel_numbers)
    codes = _landuse(data, columns.get("landuse"), rules, corrected["landuse"], reason, report)
    owner = _owner(data, columns, codes, rules, corrected["owner_type"], reason, report)
    uses = _compound_uses(data, codes, geometry.area, settings, reason, report)
    keep = reason == ""
    recorded, flags = _recorded_area(data, columns.get("area_recorded"), geometry, keep, report)
    inferred = np.flatnonzero(pd.notna(commune_flags))
    flags[inferred] = [join_flag(f, note) for f, note in zip(flags[inferred], commune_flags[inferred], strict=True)]
    contract = pd.DataFrame({
        "commune_code": commune.astype(str).to_numpy(),
        "sheet_no": sheets,
        "parcel_no": parcel_numbers,
        "landuse": codes.main.to_numpy(dtype=object),
        "landuse_raw": _text(data, columns.get("landuse"), strip=False),  # as read
        "refined": codes.refined,
        "owner_type": owner["owner_type"].to_numpy(dtype=object),
        "owner_source": owner["owner_source"].to_numpy(dtype=object),
        "owner_rule": owner["owner_rule"].to_numpy(dtype=object),
        "owner_name": _text(data, columns.get("owner_name")),
        "area_recorded": recorded,
        "area_m2": geometry.area,
        "uses": uses,
        "source_file": source_file,
        "source_fid": data["source_fid"].to_numpy(),
        "flags": flags,
    })
    parcels, quarantine = _split(contract, data, columns, geometry, reason, codes.candidates, settings)
    _account(report, geometry.area, keep, reason)
    report.inferred = inference_counts(parcels)
    report.communes = sorted(set(pd.unique(parcels["commune_code"])) | set(pd.unique(quarantine["commune_code"])))
    return parcels, quarantine, report


def _split(contract: pd.DataFrame, data: pd.DataFrame, columns: dict[str, str], geometry: Geometry,
           reason: np.ndarray, candidates: np.ndarray, settings: Settings) -> tuple[gpd.GeoDataFrame,
                                                                                    gpd.GeoDataFrame]:
    """The kept rows with the other source attributes, and the quarantined rows
    with their original attributes and reason."""
    target = vn.province_crs(settings.province)
    keep = reason == ""
    others = data.drop(columns=[c for c in data.columns if c in set(columns.values()) | {"source_fid"}])
    others = others.drop(columns=[c for c in others.columns if c in PARCEL_COLUMNS])
    full = pd.concat([contract, others.reset_index(drop=True)], axis=1)
    parcels = gpd.GeoDataFrame(full[keep].reset_index(drop=True), geometry=list(geometry.projected[keep]),
                               crs=target)
    added = contract.loc[~keep, QUARANTINE_COLUMNS].reset_index(drop=True).assign(
        area_m2=geometry.area[~keep], reason=reason[~keep], candidates=candidates[~keep])
    original = data[~keep].reset_index(drop=True)
    original = original.rename(columns={c: f"{c}_source" for c in original.columns if c in added.columns})
    quarantine = gpd.GeoDataFrame(pd.concat([original, added], axis=1), geometry=list(geometry.projected[~keep]),
                                  crs=target)
    return parcels, quarantine


def _sheets(data: pd.DataFrame, column: str | None, source_file: str, report: FileReport) -> np.ndarray:
    """The map sheet numbers: those of a file without any (no column, blanks or
    a .dbf's 0s) named after its sheet (a DGN per sheet: ``To05.dgn``) are that one."""
    sheets = _text(data, column)
    named = sheet_in_name(source_file)
    if named is not None and len(sheets) and all(sheet in (None, "0") for sheet in sheets):
        report.repairs[f"sheet number taken from the file name: {named}"] = len(sheets)
        sheets = np.full(len(sheets), named, dtype=object)
    return sheets


def _text(frame: pd.DataFrame, column: str | None, *, strip: bool = True) -> np.ndarray:
    if column is None:
        return np.full(len(frame), None, dtype=object)
    return text_values(frame[column], strip=strip)
