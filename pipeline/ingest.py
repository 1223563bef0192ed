"""Ingest: read commune parcel files as officers have them and write the parcel
contract in the province's VN-2000 TM-3 CRS.

Nothing is lost: every input feature ends in ``parcels/<commune>.parquet`` or
in ``quarantine/<commune>.parquet`` with a ``reason``; the report checks that
area in = area out + area quarantined.
"""

from __future__ import annotations

import json
import os
import logging
import re
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from . import crs as vn
from .config import Settings, WorkDir
from .errors import CRSError, InputFileError
from .io import atomic_path, write_geoparquet, write_json, write_json_if_changed, write_text
from .sources import (
    VECTOR_SUFFIXES, Source, declared_encoding, discover, discover_pattern, label_dgn_shapes, map_unique, read_source,
    repair_frame_text,
)
from .reference import landuse_tree, owner_codes, read_table
from .report import markdown_table
from .schemas import PARCEL_COLUMNS, validate_parcels
from .topology import polygonal

log = logging.getLogger(__name__)

UNKNOWN_COMMUNE_PREFIX = "file:"
#: A recorded area (DIENTICH) further than this from the computed one is flagged.
RECORDED_AREA_TOLERANCE = 0.10
#: A "parcel" larger than this (100 km²) is a digitising error (a frame, a sheet outline).
MAX_PARCEL_M2 = 1e8
#: Start of the flag set on a parcel whose geometry make_valid repaired.
INVALID_FLAG = "invalid geometry repaired"


# -------------------------------------------------------------------- reports


@dataclass
class FileReport:
    """What ingest did with one file."""

    path: str
    driver: str = ""
    encoding: str = ""
    crs_declared: str | None = None
    crs_chosen: str | None = None
    crs_reason: str = ""
    features_in: int = 0
    features_out: int = 0
    features_quarantined: int = 0
    area_in_m2: float = 0.0
    area_out_m2: float = 0.0
    area_quarantined_m2: float = 0.0
    quarantined_by_reason: dict[str, dict[str, float]] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    repairs: dict[str, int] = field(default_factory=dict)
    communes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("%s: %s", self.path, message)


# ------------------------------------------------------------------- columns


@cache
def column_aliases() -> dict[str, tuple[str, ...]]:
    """Contract field → accepted source column names (``data/column_aliases.csv``)."""
    with (resources.files("pipeline") / "data" / "column_aliases.csv").open(encoding="utf-8") as fh:
        table = pd.read_csv(fh, dtype=str)
    return {f: tuple(group["alias"]) for f, group in table.groupby("field", sort=False)}


def map_columns(frame: pd.DataFrame, extra: dict[str, tuple[str, ...]] | None = None) -> dict[str, str]:
    """Contract field → the source column that holds it (case-insensitive)."""
    by_lower = {str(c).lower(): c for c in frame.columns if c != "geometry"}
    found: dict[str, str] = {}
    for name, aliases in column_aliases().items():
        for alias in (*(extra or {}).get(name, ()), *aliases):
            if alias.lower() in by_lower:
                found[name] = by_lower[alias.lower()]
                break
    return found


# ---------------------------------------------------------------------- codes


def normalise_code(values: pd.Series) -> pd.Series:
    """Upper case, no spaces: ``' ont + cln '`` → ``'ONT+CLN'``; blanks → ``''``
    (computed once per distinct value)."""
    clean = map_unique(values, lambda u: re.sub(r"\s+", "", str(u).upper()))
    return pd.Series(clean, index=values.index, dtype=object).fillna("")


def normalise_commune_code(values: pd.Series) -> pd.Series:
    """5-digit commune codes: ``9922`` or ``'9922'`` → ``'09922'``; others → ``''``."""
    def one(value: object) -> str:
        text = re.sub(r"\.0+$", "", str(value).strip())
        return text.zfill(5) if re.fullmatch(r"\d{1,5}", text) else ""

    return pd.Series(map_unique(values, one), index=values.index, dtype=object).fillna("").astype("string")


@cache
def resolve_code(code: str, accept: frozenset[str] = frozenset()) -> tuple[str | None, str]:
    """A Circular 27/2018 leaf code for ``code``, and what was done or why not.

    Leaf codes pass, and so do the group codes in ``accept`` (a previous
    inventory compared at Biểu 14's level keeps RSX, RPH, LUA …); legacy and
    variant codes (``LNK``, ``GTO``, ``TSL`` …) are mapped through
    ``reference/legacy_codes.csv`` when it gives one target; codes that need a
    field survey to split (``LUA`` → LUC/LUK/LUN) or have no equivalent are
    refused with the candidates named.
    """
    tree = landuse_tree()
    if not code:
        return None, "blank land-use code (or an empty part of a compound code)"
    if code in tree and (tree.is_leaf(code) or code in accept):
        return code, ""
    table = read_table("legacy_codes.csv")
    rows = table[table["legacy_code"] == code]
    single = rows[rows["mapping_kind"].isin(["same", "merge_into"])
                  & rows["target_code_tt27"].isin(tree.leaves)]
    if len(single):
        row = single.iloc[0]
        return row["target_code_tt27"], f"legacy code {code} ({row['regime']}) → {row['target_code_tt27']}"
    if len(rows) and (rows["mapping_kind"] == "split_needs_field").any():
        targets = rows.loc[rows["mapping_kind"] == "split_needs_field", "target_code_tt27"].iloc[0]
        return None, (f"code '{code}' must be split by a field survey into one of "
                      f"{targets.replace('|', ', ')}; correct the code in the source")
    if code in tree:
        return None, (f"'{code}' is a group code of Circular 27/2018; give the detailed code "
                      f"({', '.join(tree.children(code))})")
    return None, f"land-use code '{code}' is not a Circular 27/2018 code nor a known legacy code"


@dataclass(frozen=True)
class ResolvedCode:
    """A raw (possibly compound) code after legacy mapping: its leaf codes, or why not."""

    codes: tuple[str, ...]
    refusal: str = ""
    notes: tuple[str, ...] = ()


@cache
def resolve_compound(raw: str, accept: frozenset[str] = frozenset()) -> ResolvedCode:
    """``'ONT+LNK'`` → codes (ONT, CLN) with the note of the LNK mapping; the first
    refusal of any member makes the whole code refused."""
    members = raw.split("+")
    resolved = [resolve_code(m, accept) for m in members]
    refusal = next((why for leaf, why in resolved if leaf is None), "")
    codes = tuple(leaf or m for (leaf, _), m in zip(resolved, members))
    return ResolvedCode(codes, refusal, tuple(why for leaf, why in resolved if leaf and why))


def split_compound(codes: list[str], area: float, known: dict[str, float], first_use_m2: float) -> dict[str, float]:
    """Split a compound parcel's area among its uses, conserving the area exactly.

    Areas found in the source (``known``) are used as given while they fit;
    otherwise the first use gets ``min(first_use_m2, area)`` and the others share
    the rest equally. The last use takes the remainder.
    """
    parts: dict[str, float] = {}
    remaining = area
    for i, code in enumerate(codes):
        left = len(codes) - i - 1
        if left == 0:
            parts[code] = remaining
            break
        value = known.get(code)
        if value is None or not np.isfinite(value) or not 0 < value < remaining:
            value = min(first_use_m2, remaining) if i == 0 else remaining / (left + 1)
        parts[code] = float(value)
        remaining -= value
    return parts


# ----------------------------------------------------------------------- core


def ingest_frame(
    frame: gpd.GeoDataFrame,
    *,
    source_file: str,
    source_crs: CRS | vn.SourceCRS,
    settings: Settings,
    commune_code: str | None = None,
    report: FileReport | None = None,
    accept_codes: frozenset[str] = frozenset(),
    require_owner: bool = True,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, FileReport]:
    """Map one source frame to the parcel contract (pure: no I/O).

    Returns ``(parcels, quarantine, report)``; every input row is in exactly one
    of the two frames, the quarantine with its original attributes and ``reason``.
    ``accept_codes`` are group codes kept as they are; without ``require_owner``
    a blank or unknown user/manager code is kept instead of quarantined (a
    previous inventory's layer, compared by land use only).
    """
    report = report or FileReport(path=source_file)
    meridian = settings.province.central_meridian_deg
    target = vn.province_crs(settings.province)
    columns = map_columns(frame, settings.column_aliases)
    data = frame.drop(columns="geometry")
    geoms = np.asarray(frame.geometry.values, dtype=object)
    geoms = np.where(pd.isna(geoms), None, geoms)
    if not isinstance(source_crs, vn.SourceCRS):
        source_crs = vn.SourceCRS(source_crs, "given")
    reason = np.full(len(frame), "", dtype=object)

    # coordinates: finite (NaN/inf cannot be placed), 2-D (Z/M dropped)
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
    geoms = np.where(finite, geoms, None)
    projected = vn.reproject(source_crs.prepare(geoms), source_crs.crs, meridian)

    # geometry: present, polygonal, valid
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

    # land use
    raw_code = normalise_code(data[columns["landuse"]]) if "landuse" in columns else pd.Series([""] * len(frame))
    if "landuse" not in columns:
        report.warn("no land-use column found (KHLOAIDAT, MDSD, Loai_dat …); add its name under [columns] landuse")
    blank = raw_code.eq("").to_numpy()
    reason[blank & (reason == "")] = "blank land-use code"
    # resolve each distinct code once (a province has a few hundred), then map
    decoded = {raw: resolve_compound(raw, accept_codes) for raw in pd.unique(raw_code) if raw}
    refusal = raw_code.map({raw: d.refusal for raw, d in decoded.items()}).astype(object).fillna("").to_numpy()
    mask = (refusal != "") & ~blank & (reason == "")
    reason[mask] = refusal[mask]
    counts = raw_code[reason == ""].value_counts()
    for raw, d in decoded.items():
        for note in d.notes:
            report.repairs[note] = report.repairs.get(note, 0) + int(counts.get(raw, 0))
    parts = raw_code.map({raw: d.codes for raw, d in decoded.items()})
    main_code = raw_code.map({raw: d.codes[0] for raw, d in decoded.items()}).astype(object).fillna("")

    # owner / manager object
    owners = owner_codes()
    valid_owner = set(owners.index[owners["role"].isin(["user", "manager"])])
    owner = normalise_code(data[columns["owner_type"]]) if "owner_type" in columns else pd.Series([""] * len(frame))
    if require_owner:
        mask = (reason == "") & owner.eq("").to_numpy()
        reason[mask] = "blank user/manager object code (DOITUONG)"
        mask = (reason == "") & ~owner.isin(valid_owner).to_numpy()
        reason[mask] = [f"user/manager object code {c!r} is not in the Circular 27/2018 list" for c in owner[mask]]

    # commune code: attribute, then config, then the file name (with a warning)
    commune = (normalise_commune_code(data[columns["commune_code"]]) if "commune_code" in columns
               else pd.Series([""] * len(frame), dtype="string"))
    fallback = normalise_commune_code(pd.Series([commune_code or ""])).iat[0] or (commune_code or "")
    if commune.eq("").any() and not fallback:
        fallback = f"{UNKNOWN_COMMUNE_PREFIX}{Path(source_file).stem}"
        report.warn(f"no commune code known for {int(commune.eq('').sum())} features: named "
                    f"'{fallback}'. Give commune_code in a [[sources]] entry of inventory.toml")
    commune = commune.mask(commune.eq(""), fallback)

    # compound uses
    uses = np.full(len(frame), None, dtype=object)
    compound = np.flatnonzero((reason == "") & raw_code.str.contains("+", regex=False).to_numpy())
    if len(compound):  # the columns that may hold each use's area, read once
        members = {code for i in compound for code in parts.iat[i]}
        fields = {code: [c for c in (_find_column(data, f) for f in (*settings.compound.area_fields.get(code, ()),
                                                                      f"DT_{code}")) if c is not None]
                  for code in members}
        numbers = {c: pd.to_numeric(data[c], errors="coerce").to_numpy(dtype=float)
                   for c in {c for cs in fields.values() for c in cs}}
    for i in compound:
        codes = parts.iat[i]
        known = {}
        for code in codes:
            value = next((numbers[c][i] for c in fields[code] if np.isfinite(numbers[c][i]) and numbers[c][i] > 0),
                         None)
            if value is not None:
                known[code] = float(value)
        split = split_compound(codes, float(area[i]), known, settings.compound.first_use_m2)
        uses[i] = json.dumps(split)
    if len(compound):
        report.repairs["compound codes split into uses"] = len(compound)

    keep = reason == ""
    recorded = (pd.to_numeric(data[columns["area_recorded"]], errors="coerce").to_numpy(dtype=float)
                if "area_recorded" in columns else np.full(len(frame), np.nan))
    flags = invalid_why.copy()
    if "area_recorded" in columns:
        garbage = keep & (~np.isfinite(recorded) | (recorded <= 0) | (
            (np.abs(recorded - area) > RECORDED_AREA_TOLERANCE * area) & (np.abs(recorded - area) > 5.0)))
        flags[garbage] = [_join(f, f"recorded area {r:g} m² ≠ computed {a:.1f} m²")
                          for f, r, a in zip(flags[garbage], recorded[garbage], area[garbage])]
        if garbage.any():
            report.flagged["recorded area missing or more than 10 % off"] = int(garbage.sum())
    contract = pd.DataFrame({
        "commune_code": commune.astype(str).to_numpy(),
        "sheet_no": _text(data, columns.get("sheet_no")),
        "parcel_no": _text(data, columns.get("parcel_no")),
        "landuse": main_code.to_numpy(dtype=object),
        "landuse_raw": _text(data, columns.get("landuse")),
        "owner_type": owner.to_numpy(dtype=object),
        "area_recorded": recorded,
        "area_m2": area,
        "uses": uses,
        "source_file": source_file,
        "source_fid": data["source_fid"].to_numpy(),
        "flags": flags,
    })
    others = data.drop(columns=[c for c in data.columns if c in set(columns.values()) | {"source_fid"}])
    others = others.drop(columns=[c for c in others.columns if c in PARCEL_COLUMNS])
    full = pd.concat([contract, others.reset_index(drop=True)], axis=1)

    parcels = gpd.GeoDataFrame(full[keep].reset_index(drop=True),
                               geometry=list(projected[keep]), crs=target)
    added = pd.DataFrame({"commune_code": commune[~keep].astype(str).to_numpy(), "source_file": source_file,
                          "area_m2": area[~keep], "reason": reason[~keep]})
    original = data[~keep].reset_index(drop=True)
    original = original.rename(columns={c: f"{c}_source" for c in original.columns if c in added.columns})
    quarantine = gpd.GeoDataFrame(pd.concat([original, added], axis=1),
                                  geometry=list(projected[~keep]), crs=target)

    report.features_in += len(frame)
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
    report.communes = sorted(set(report.communes) | set(pd.unique(parcels["commune_code"]))
                             | set(pd.unique(quarantine["commune_code"])))
    return parcels, quarantine, report


def _join(flags: object, note: str) -> str:
    """Append a note to a parcel's ``flags`` text."""
    return f"{flags}; {note}" if isinstance(flags, str) and flags else note


def _finite_bounds(geoms: np.ndarray) -> np.ndarray:
    """Bounds of the finite coordinates only (NaN/inf vertices are ignored here
    and quarantined later)."""
    coords = shapely.get_coordinates(geoms)
    coords = coords[np.isfinite(coords).all(axis=1)]
    if not len(coords):
        return np.array([np.nan] * 4)
    return np.array([*coords.min(axis=0), *coords.max(axis=0)])


def _find_column(frame: pd.DataFrame, name: str) -> str | None:
    lowered = {str(c).lower(): c for c in frame.columns}
    return lowered.get(name.lower())


def _text(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    if column is None:
        return np.full(len(frame), None, dtype=object)
    values = frame[column]
    if pd.api.types.is_float_dtype(values) and values.dropna().mod(1).eq(0).all():
        values = values.astype("Int64")
    return values.astype("string").to_numpy(dtype=object, na_value=None)


# --------------------------------------------------------------------- driver


@dataclass
class IngestResult:
    """What ``run_ingest`` wrote."""

    files: list[FileReport]
    parcels: dict[str, Path]
    quarantine: dict[str, Path]
    changed: set[str] = field(default_factory=set)

    @property
    def totals(self) -> dict[str, float]:
        keys = ("features_in", "features_out", "features_quarantined",
                "area_in_m2", "area_out_m2", "area_quarantined_m2")
        return {k: sum(getattr(f, k) for f in self.files) for k in keys}


def ingest_file(source: Source | Path, settings: Settings, **rules) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame,
                                                                             FileReport]:
    """Read one layer and map it to the contract (``rules``: see :func:`ingest_frame`)."""
    source = source if isinstance(source, Source) else Source(Path(source))
    override = settings.override_for(source.path)
    frame, info = read_source(source)
    codec, declared_by = declared_encoding(source, override.encoding)
    report = FileReport(path=source.label, driver=info.get("driver", ""),
                        encoding=f"{codec} ({declared_by})" if codec else (
                            "bytes decoded per value (no .cpg)" if info["latin1"] else "UTF-8"))
    frame, text = repair_frame_text(frame, latin1=info["latin1"], codec=codec)
    report.repairs.update(text.counts)
    if text.undecoded:
        report.warn(f"{len(text.undecoded)} words could not be decoded and are kept as read: "
                    + ", ".join(sorted(text.undecoded)[:10]))
    if report.driver == "DGN":
        frame, labels = label_dgn_shapes(frame)
        report.repairs["DGN text elements used as parcel labels"] = labels
    if override.owner_type:
        column = map_columns(frame, settings.column_aliases).get("owner_type")
        if column is None:
            frame["DOITUONG"] = override.owner_type
        else:
            blank = frame[column].isna() | frame[column].astype(str).str.strip().eq("")
            frame.loc[blank, column] = override.owner_type
            if blank.any():
                report.repairs[f"blank owner type set to {override.owner_type} (config)"] = int(blank.sum())
    report.crs_declared = frame.crs.to_string() if frame.crs is not None else None
    if info.get("crs_problem"):
        report.warn(info["crs_problem"])
    declared = CRS.from_user_input(override.crs) if override.crs else (
        CRS.from_user_input(frame.crs) if frame.crs is not None else None)
    present = frame.geometry[~(frame.geometry.isna() | frame.geometry.is_empty)]
    if present.empty:
        source_crs = vn.SourceCRS(vn.province_crs(settings.province), "no geometry to place")
    else:
        source_crs = vn.detect_crs(_finite_bounds(present.values), declared,
                                   settings.province.central_meridian_deg,
                                   given_by_config=bool(override.crs))
    report.crs_chosen, report.crs_reason = source_crs.describe(), source_crs.reason
    if source_crs.warning:
        report.warn(source_crs.warning)
    return ingest_frame(frame, source_file=source.label, source_crs=source_crs, settings=settings,
                        commune_code=override.commune_code, report=report, **rules)


def ingest_to_cache(source: Source, settings: Settings) -> tuple[str, bool]:
    """Task: ingest one file into its cache entry (unless it is current); return
    (cache folder, whether the file was read). Runs on a worker."""
    cache = IngestCache(WorkDir(settings.workdir).root / "cache" / "ingest", source, settings)
    if cache.is_current():
        return str(cache.folder), False
    try:
        parcels, quarantine, report = ingest_file(source, settings)
        validate_parcels(parcels, crs=vn.province_crs(settings.province))
        cache.store(parcels, quarantine, report)
    except (CRSError, InputFileError) as exc:
        raise type(exc)(str(exc) if source.label in str(exc) else f"{source.label}: {exc}") from None
    return str(cache.folder), True


def run_ingest(paths: list[Path], settings: Settings, *, progress: bool = True,
               scheduler: str | None = "sync") -> IngestResult:
    """Ingest files/folders into ``settings.workdir`` (parcels, quarantine, reports).

    Incremental: a file whose bytes, overrides and settings have not changed is
    taken from ``cache/ingest/`` instead of being read again, and only the
    communes it feeds are rewritten (``result.changed``).
    """
    work = WorkDir(settings.workdir)
    previous = {s.key for s in discover_pattern(settings.previous.path)} if settings.previous else set()
    files = [source for source in discover(paths) if source.key not in previous]  # the archive is not this year's
    if not files:
        raise InputFileError(f"No vector files ({', '.join(VECTOR_SUFFIXES)}) under {', '.join(map(str, paths))}.")
    from .parallel import executor

    with executor(scheduler) as pmap:
        done = pmap(ingest_to_cache, [(source, settings) for source in files], "ingest" if progress else "")
        reports = [IngestCache.read_report(Path(folder)) for folder, _ in done]
        reread = {source.label for source, (_, was_read) in zip(files, done) if was_read}

        if sum(r.features_in for r in reports) == 0:
            raise InputFileError(
                f"{', '.join(str(p) for p in paths)}: the files hold no features (empty layers). "
                "Check the export: it should contain the commune's parcels.")
        folders_of: dict[str, list[str]] = {}
        for (folder, _), report in zip(done, reports):
            for code in report.communes:
                folders_of.setdefault(code, []).append(folder)
        sources_of = {code: sorted({r.path for r, (f, _) in zip(reports, done) if f in folders})
                      for code, folders in sorted(folders_of.items())}
        state_path = work.root / "cache" / "communes.json"
        state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else {}
        state = {code: entry for code, entry in state.items() if isinstance(entry, dict)}  # older layout: redo
        changed = {code for code, labels in sources_of.items()
                   if state.get(code, {}).get("sources") != labels or set(labels) & reread
                   or not work.parcels(_safe(code)).exists()}
        for code in set(state) - set(sources_of):  # a commune whose files are gone
            work.parcels(_safe(code)).unlink(missing_ok=True)
            work.quarantine(_safe(code)).unlink(missing_ok=True)
            changed.add(code)
        # each changed commune is put together from its files' cache entries on a worker
        todo = sorted(changed & set(sources_of))
        flagged = pmap(assemble_commune, [(str(work.root), code, folders_of[code]) for code in todo],
                       "communes" if progress else "")
    for code, counts in zip(todo, flagged):
        state[code] = {"sources": sources_of[code], "duplicates": counts}
    state = {code: state[code] for code in sources_of}
    for report in reports:
        if report.features_in == 0 and "the layer holds no features" not in report.warnings:
            report.warn("the layer holds no features")
        duplicates = sum(entry["duplicates"].get(report.path, 0) for entry in state.values())
        if duplicates:
            report.flagged[DUPLICATE_NOTE] = duplicates

    result = IngestResult(reports, {c: work.parcels(_safe(c)) for c in sources_of if work.parcels(_safe(c)).exists()},
                          {c: work.quarantine(_safe(c)) for c in sources_of if work.quarantine(_safe(c)).exists()},
                          changed=changed)
    write_json_if_changed(work.manifest, settings.to_manifest())
    if changed or not (work.reports_dir / "ingest.json").exists():
        write_ingest_reports(result, work, settings)
        write_json(state_path, state)
    log.info("ingest: %d files (%d read, %d unchanged), %d communes rewritten", len(files), len(reread),
             len(files) - len(reread), len(changed))
    return result


DUPLICATE_NOTE = "duplicate sheet/parcel number in the commune"


def assemble_commune(workdir: str, code: str, folders: list[str]) -> dict[str, int]:
    """Task: ``parcels/<code>.parquet`` and ``quarantine/<code>.parquet`` from the
    cache entries of the files that feed the commune, with duplicate sheet/parcel
    numbers flagged (never dropped). Arrow tables throughout: the geometry stays
    WKB. Returns the flagged parcels per source file. Runs on a worker."""
    import pyarrow as pa

    work = WorkDir(workdir)
    if len(folders) == 1 and _link_whole_file(Path(folders[0]), code, work):
        return {}
    parcels = _commune_table([Path(f) / "parcels.parquet" for f in folders], code)
    numbers = parcels.select(["sheet_no", "parcel_no", "source_file", "flags"]).to_pandas()
    dup = (numbers["sheet_no"].notna() & numbers["parcel_no"].notna()
           & numbers.duplicated(["sheet_no", "parcel_no"], keep=False)).to_numpy()
    counts: dict[str, int] = {}
    if dup.any():
        flags = numbers["flags"].to_numpy(dtype=object, copy=True)
        flags[dup] = [_join(f, DUPLICATE_NOTE) for f in flags[dup]]
        parcels = parcels.set_column(parcels.schema.get_field_index("flags"), "flags", pa.array(flags, pa.string()))
        counts = {k: int(v) for k, v in numbers.loc[dup, "source_file"].value_counts().items()}
    _write_table(work.parcels(_safe(code)), parcels)
    quarantine = _commune_table([Path(f) / "quarantine.parquet" for f in folders], code)
    if quarantine.num_rows:
        _write_table(work.quarantine(_safe(code)), quarantine)
    else:
        work.quarantine(_safe(code)).unlink(missing_ok=True)
    return counts


def _link_whole_file(folder: Path, code: str, work: WorkDir) -> bool:
    """A commune that is exactly one file with no duplicate numbers: its cache
    entry is the commune file as it is (hard-linked, so nothing is rewritten).
    False when that is not the case."""
    import pyarrow.parquet as pq

    report = IngestCache.read_report(folder)
    numbers = pq.read_table(folder / "parcels.parquet", columns=["sheet_no", "parcel_no"]).to_pandas()
    if report.communes != [code] or numbers.dropna().duplicated().any():
        return False
    for name, target in (("parcels", work.parcels(_safe(code))), ("quarantine", work.quarantine(_safe(code)))):
        source = folder / f"{name}.parquet"
        if name == "quarantine" and pq.read_metadata(source).num_rows == 0:
            target.unlink(missing_ok=True)
            continue
        _link(source, target)
    return True


def _link(source: Path, target: Path) -> None:
    """``target`` becomes ``source`` (a hard link, or a copy across file
    systems), atomically, with a fresh modification time for the later stages."""
    import shutil

    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
    os.utime(target)


def _commune_table(paths: list[Path], code: str):
    """The rows of one commune from GeoParquet files, as one Arrow table with
    GeoParquet metadata (geometry types merged; a bbox only when exact)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(p) for p in paths]
    tables = [t.filter(pa.compute.equal(t["commune_code"], code)) if len(set(t["commune_code"].to_pylist())) > 1
              else t for t in tables]
    geo = [json.loads(t.schema.metadata[b"geo"]) for t in tables]
    try:
        table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column typed differently in two files
        frames = [t.to_pandas() for t in tables]
        table = pa.Table.from_pandas(pd.concat(frames, ignore_index=True).astype(
            {c: object for f in frames for c in f.columns if f[c].dtype == object}), preserve_index=False)
    merged = geo[0]
    column = merged["primary_column"]
    merged["columns"][column]["geometry_types"] = sorted({t for g in geo for t in g["columns"][column]["geometry_types"]})
    if len(tables) > 1 or table.num_rows != pq.read_metadata(paths[0]).num_rows:
        merged["columns"][column].pop("bbox", None)
    return table.replace_schema_metadata({**(table.schema.metadata or {}), b"geo": json.dumps(merged).encode()})


def _write_table(path: Path, table) -> Path:
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


class IngestCache:
    """One source file's ingest result, kept until the file, its overrides or the
    settings change (fingerprint of sizes and modification times of every part)."""

    def __init__(self, root: Path, source: Source, settings: Settings):
        import hashlib

        parts = [source.path] if source.path.suffix.lower() != ".shp" else sorted(
            source.path.parent.glob(source.path.stem + ".*"))
        stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in parts if p.exists()]
        text = json.dumps([source.label, stamp, repr(settings.override_for(source.path)),
                           settings.province.gso_code, repr(settings.column_aliases), repr(settings.compound),
                           __import__("pipeline").__version__], default=str)
        self.fingerprint = hashlib.sha1(text.encode()).hexdigest()
        self.folder = root / hashlib.sha1(source.label.encode()).hexdigest()[:20]

    def is_current(self) -> bool:
        try:
            return (self.folder / "fingerprint").read_text() == self.fingerprint
        except FileNotFoundError:
            return False

    @staticmethod
    def read_report(folder: Path) -> FileReport:
        return FileReport(**json.loads((folder / "report.json").read_text(encoding="utf-8")))

    def store(self, parcels: gpd.GeoDataFrame, quarantine: gpd.GeoDataFrame, report: FileReport) -> None:
        write_geoparquet(self.folder / "parcels.parquet", parcels)
        write_geoparquet(self.folder / "quarantine.parquet", quarantine)
        write_json(self.folder / "report.json", asdict(report))
        write_text(self.folder / "fingerprint", self.fingerprint)  # last: marks the entry complete


def _safe(code: str) -> str:
    return code.replace(UNKNOWN_COMMUNE_PREFIX, "unknown_").replace("/", "_")


def write_ingest_reports(result: IngestResult, work: WorkDir, settings: Settings) -> None:
    """``reports/ingest.json`` (machine) and ``reports/ingest.md`` (officer)."""
    totals = result.totals
    write_json(work.reports_dir / "ingest.json", {
        **totals,
        "province": settings.province.name_vi,
        "target_crs": vn.province_crs(settings.province).to_string(),
        "files": [asdict(f) for f in result.files],
    })
    rows = pd.DataFrame([{
        "file": f.path, "format": f.driver, "encoding": f.encoding,
        "CRS declared": f.crs_declared or "(none)", "CRS chosen": f.crs_chosen,
        "why": f.crs_reason, "in": f.features_in, "out": f.features_out,
        "quarantined": f.features_quarantined, "area out (ha)": f.area_out_m2 / 1e4,
        "area quarantined (ha)": f.area_quarantined_m2 / 1e4,
    } for f in result.files])
    lines = [
        f"# Ingest report — {settings.province.name_vi}",
        "",
        f"Target CRS: {vn.province_crs(settings.province).name} "
        f"({vn.province_crs(settings.province).to_string()}), areas in m² in that CRS.",
        "",
        f"- Features in: {totals['features_in']}, out: {totals['features_out']}, "
        f"quarantined: {totals['features_quarantined']}",
        f"- Area in: {totals['area_in_m2'] / 1e4:.4f} ha = out {totals['area_out_m2'] / 1e4:.4f} ha "
        f"+ quarantined {totals['area_quarantined_m2'] / 1e4:.4f} ha",
        "",
        markdown_table(rows),
        "",
    ]
    for f in result.files:
        notes = [f"- quarantined, {r}: {int(v['features'])} features, {v['area_m2'] / 1e4:.4f} ha"
                 for r, v in f.quarantined_by_reason.items()]
        notes += [f"- flagged (kept), {r}: {n}" for r, n in f.flagged.items()]
        notes += [f"- repaired, {r}: {n}" for r, n in f.repairs.items()]
        notes += [f"- warning: {w}" for w in f.warnings]
        if notes:
            lines += [f"## {f.path}", "", *notes, ""]
    write_text(work.reports_dir / "ingest.md", "\n".join(lines))

