"""Aggregate: area by land-use code × user/manager object per commune.

``stats/areas.csv`` holds leaf codes only (the base table of every form);
parent codes and the natural-area total are sums over the code tree, written
to ``stats/summary.csv`` and ``reports/aggregate.md``. Areas are summed in m²
and converted to ha once, for display.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather

from .io import atomic_path, forget_versions_beside, up_to_date, write_csv, write_text
from .parallel import executor
from .qa.between_communes import find_commune_overlaps, overlaps_section
from .records import commune_set, digests_record, keep_hand_edits, recording, tell_kept
from .reference import NATURAL_AREA_GROUPS, landuse_tree, owner_codes
from .report import markdown_table, unit_label, vn_number
from .rounding import commune_cells
from .schemas import AREAS_COLUMNS, validate_areas
from .vntext import fold
from .workdir import WorkDir, in_run_regime

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger(__name__)
TOTAL_CODE = "TONG"  # the unit's natural area, NNP + PNN + CSD


def expand_uses(parcels: pd.DataFrame) -> pd.DataFrame:
    """One row per (parcel, use): compound parcels contribute each use's m²."""
    single = parcels["uses"].isna()
    rows = [parcels.loc[single, ["commune_code", "landuse", "owner_type", "area_m2"]]]
    compound = parcels.loc[~single]
    if len(compound):
        split = compound["uses"].map(json.loads)
        expanded = pd.DataFrame(
            [(c, code, o, a) for c, o, uses in zip(compound["commune_code"], compound["owner_type"], split, strict=True)
             for code, a in uses.items()],
            columns=["commune_code", "landuse", "owner_type", "area_m2"],
        )
        rows.append(expanded)
    return pd.concat(rows, ignore_index=True)


def area_by_code(parcels: pd.DataFrame) -> pd.DataFrame:
    """Σ m² by commune × leaf land-use code × owner type, in the circular's order."""
    long = expand_uses(parcels)
    areas = long.groupby(["commune_code", "landuse", "owner_type"], as_index=False, sort=False)["area_m2"].sum()
    tree_order = {c: i for i, c in enumerate(landuse_tree().codes)}
    owner_order = {c: i for i, c in enumerate(owner_codes().index)}
    areas = areas.assign(
        _c=areas["landuse"].map(tree_order), _o=areas["owner_type"].map(owner_order)
    ).sort_values(["commune_code", "_c", "_o"]).drop(columns=["_c", "_o"])
    return validate_areas(areas.reset_index(drop=True)[list(AREAS_COLUMNS)])


def code_tree_totals(areas: pd.DataFrame) -> pd.DataFrame:
    """Per commune, every code of the tree (leaf and parent) with its m², plus
    the natural-area total ``TONG`` = NNP + PNN + CSD (the MVB block apart);
    ``area_ha`` is the sum of the commune's apportioned cells (the figures the
    forms print: :mod:`pipeline.rounding`)."""
    tree = landuse_tree()
    codes = tree.codes
    position = {c: i for i, c in enumerate(codes)}
    by_leaf = commune_cells(areas).groupby(["commune_code", "landuse"])[["area_m2", "cells"]].sum()
    communes = sorted(areas["commune_code"].unique())
    targets = {leaf: [position[c] for c in (leaf, *tree.ancestors(leaf))]
               for leaf in by_leaf.index.unique("landuse")}  # a leaf's m² goes to it and each code above it
    leaves = by_leaf.index.get_level_values("landuse")
    reach = np.array([len(targets[leaf]) for leaf in leaves], dtype=np.intp)
    at = (np.repeat(pd.Index(communes).get_indexer(by_leaf.index.get_level_values("commune_code")), reach),
          np.concatenate([targets[leaf] for leaf in leaves]) if len(leaves) else np.zeros(0, np.intp))
    m2, centi = np.zeros((len(communes), len(codes))), np.zeros((len(communes), len(codes)), dtype=np.int64)
    np.add.at(m2, at, np.repeat(by_leaf["area_m2"].to_numpy(float), reach))  # in the leaves' order, as a loop adds
    np.add.at(centi, at, np.repeat(by_leaf["cells"].to_numpy().astype(np.int64), reach))
    natural = [position[g] for g in NATURAL_AREA_GROUPS]
    m2 = np.column_stack([sum(m2[:, i] for i in natural), m2])  # the natural area first, as TONG leads
    centi = np.column_stack([sum(centi[:, i] for i in natural), centi])
    rows = len(codes) + 1
    out = pd.DataFrame({
        "commune_code": np.repeat(np.asarray(communes, dtype=object), rows),
        "code": np.tile(np.asarray([TOTAL_CODE, *codes], dtype=object), len(communes)),
        "level": np.tile([0, *(int(tree.table.at[c, "level"]) for c in codes)], len(communes)).astype(np.int64),
        "name_vi": np.tile(np.asarray(["Tổng diện tích tự nhiên", *(tree.name(c) for c in codes)], dtype=object),
                           len(communes)),
        "area_m2": m2.ravel(), "cells": centi.ravel()})
    out["area_ha"] = out.pop("cells") / 100
    return out


AREA_COLUMNS = ["commune_code", "landuse", "owner_type", "area_m2", "uses"]
STATISTICS_COLUMNS = ["commune_code", "sheet_no", "parcel_no", "landuse", "owner_type", "owner_source", "owner_name",
                      "area_m2", "uses"]


def areas_of(units: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A commune's areas by code × owner, and its gap khoanh (no code)."""
    return area_by_code(units[units["landuse"].notna()]), units.loc[units["landuse"].isna(), AREA_COLUMNS]


def owner_sources(parcels: pd.DataFrame) -> pd.DataFrame:
    """A commune's parcel area by land-use group and by how the user/manager
    object was found (file, name, land use, config, default, correction), for
    the forms' note on inferred objects."""
    tree = landuse_tree()
    roots = {c: tree.root(c) if c in tree else "" for c in parcels["landuse"].dropna().unique()}
    group = parcels["landuse"].map(roots).fillna("")  # each distinct code looked up once
    return (parcels.assign(group=group).groupby(["commune_code", "group", "owner_source"], as_index=False)["area_m2"]
            .sum())


def holder_counts(parcels: pd.DataFrame) -> pd.DataFrame:
    """Biểu 02/TKKK's figures: per commune × row code (each code of the tree
    above a parcel's uses, and ``TONG``) × object, the number of distinct
    holders — the owner's name however it is written, else the parcel itself
    (every unnamed parcel its own holder). Integer keys throughout."""
    tree = landuse_tree()
    index, uniques = pd.factorize(parcels["owner_name"].fillna("").astype(str))
    folded, folded_names = pd.factorize(pd.Series([fold(u) for u in uniques], dtype=object))
    holder = folded[index] if len(index) else np.zeros(0, dtype=np.int64)
    nameless = np.flatnonzero(folded_names == "")
    unnamed = np.isin(holder, nameless)
    holder = np.where(unnamed, -1 - np.arange(len(parcels)), holder)
    row, leaf = _parcel_uses(parcels)
    leaf_index, leaves = pd.factorize(pd.Series(leaf, dtype=object))
    rows_of = [[c, *tree.ancestors(c), TOTAL_CODE] if c in tree else [] for c in leaves]
    codes, code_of = pd.factorize(pd.Series([c for r in rows_of for c in r], dtype=object))
    offsets = np.cumsum([0, *map(len, rows_of)])
    counts = np.diff(offsets)[leaf_index]
    pair = np.repeat(np.arange(len(row)), counts)
    within = np.arange(len(pair)) - np.repeat(np.cumsum(counts) - counts, counts)
    code = codes[offsets[leaf_index[pair]] + within]
    commune, communes = pd.factorize(parcels["commune_code"])
    owner, owners = pd.factorize(parcels["owner_type"], use_na_sentinel=False)
    at = row[pair]
    frame = pd.DataFrame({"commune": commune[at], "code": code, "owner": owner[at], "holder": holder[at]})
    distinct = frame.drop_duplicates(["commune", "code", "owner", "holder"])
    out = distinct.groupby(["commune", "code", "owner"], sort=False).size().rename("holders").reset_index()
    return pd.DataFrame({"commune_code": communes.to_numpy()[out["commune"]], "code": code_of.to_numpy()[out["code"]],
                         "owner_type": owners.to_numpy()[out["owner"]], "holders": out["holders"].to_numpy()})


def _parcel_uses(parcels: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(row, code) of every use of every parcel, in row order: a compound
    parcel's uses, else its land-use code (rows without a code left out)."""
    uses = parcels["uses"].to_numpy(dtype=object)
    compound = np.flatnonzero([isinstance(u, str) for u in uses])
    single = np.setdiff1d(np.flatnonzero(parcels["landuse"].notna().to_numpy()), compound)
    parsed = [list(json.loads(uses[i])) for i in compound]
    row = np.concatenate([single, np.repeat(compound, [len(p) for p in parsed])]).astype(np.int64)
    code = np.concatenate([parcels["landuse"].to_numpy(dtype=object)[single],
                           np.array([c for p in parsed for c in p], dtype=object)])
    order = np.argsort(row, kind="stable")
    return row[order], code[order]


def commune_figures(units_path: str | None, parcels_path: str | None,
                    kept: str | None = None) -> tuple[tuple | None, tuple | None]:
    """Task: a commune's :func:`areas_of` its khoanh (or its parcels, before
    the khoanh stage), and its parcels' :func:`owner_sources` and
    :func:`holder_counts`; a file that is both read once; kept under the
    stem ``kept`` for the next run (see :func:`keep_figures`). Runs on a worker."""
    parcels = pd.read_parquet(parcels_path, columns=STATISTICS_COLUMNS) if parcels_path else None
    if units_path == parcels_path:
        units = parcels
    else:
        units = pd.read_parquet(units_path, columns=AREA_COLUMNS) if units_path else None
    figures = (areas_of(units) if units is not None else None,
               (owner_sources(parcels), holder_counts(parcels)) if parcels is not None else None)
    if kept is not None:
        keep_figures(Path(kept), figures)
    return figures


#: A commune's figures as kept between runs: the file suffix of each frame of each half.
KEPT_PARTS = (("areas", "uncoded"), ("owner_sources", "holders"))


def _kept_part(stem: Path, name: str) -> Path:
    return stem.with_name(f"{stem.name}.{name}.feather")


def keep_figures(stem: Path, figures: tuple[tuple | None, tuple | None]) -> None:
    """A commune's figures as Feather files ``<stem>.<part>.feather`` (a half
    that is None leaves none), so that a run after other communes changed reads them."""
    for frames, names in zip(figures, KEPT_PARTS, strict=True):
        for frame, name in enumerate(names):
            if frames is None:
                _kept_part(stem, name).unlink(missing_ok=True)
                continue
            with atomic_path(_kept_part(stem, name)) as tmp:
                frames[frame].reset_index(drop=True).to_feather(tmp)


def kept_figures(stem: Path, units_path: str | None, parcels_path: str | None,
                 manifest: Path) -> tuple[tuple | None, tuple | None] | None:
    """A commune's figures kept by an earlier run (as Arrow tables), or None when they
    are not current (older than its files or the run manifest) or not for the same files."""
    wanted = list(zip((units_path, parcels_path), KEPT_PARTS, strict=True))
    if any(_kept_part(stem, name).exists() != (path is not None) for path, names in wanted for name in names):
        return None
    present = [_kept_part(stem, name) for path, names in wanted if path is not None for name in names]
    if not up_to_date(present, [Path(p) for p in (units_path, parcels_path, manifest) if p is not None]):
        return None
    halves = [tuple(_read_kept(_kept_part(stem, name)) for name in names) if path is not None else None
              for path, names in wanted]
    return halves[0], halves[1]


def _read_kept(path: Path) -> pa.Table:
    """A kept figure as Arrow, made pandas with the other communes' (:func:`joined`)."""
    return feather.read_table(path)


def joined(frames: list[pd.DataFrame | pa.Table]) -> pd.DataFrame:
    """Communes' figures, summed in this run (pandas) or kept (Arrow), as one
    frame in their order: each run of kept ones joined as Arrow and made pandas
    once (800 kept files of the 1 M province: 0.2 s, not 0.7 one by one)."""
    pieces: list[pd.DataFrame] = []
    for arrow, run in groupby(frames, key=lambda frame: isinstance(frame, pa.Table)):
        members = list(run)
        pieces += [pa.concat_tables(members, promote_options="default").to_pandas()] if arrow else members
    return pd.concat(pieces, ignore_index=True)


@in_run_regime
def run_aggregate(work: WorkDir, *, scheduler: str | None = "sync") -> dict[str, Path]:
    """Read ``khoanh/*.parquet`` (or, before the khoanh stage, ``parcels/``) and
    write ``stats/areas.csv``, ``stats/summary.csv`` and ``reports/aggregate.md``
    (each commune summed on a worker of ``scheduler``, see :func:`parallel.executor`).

    Gap khoanh (no code) are left out of the statistics and counted in the report.
    """
    files = work.khoanh_files() or work.parcel_files()
    outputs = {"areas": work.areas_csv, "summary": work.summary_csv, "report": work.report("aggregate.md"),
               "owner_sources": work.owner_sources_csv, "holders": work.holders_csv}
    # land two communes hold, once the khoanh stage has outlined them (not the new units: each m² in one)
    overlapping = any(work.commune_outline(path.stem).exists() for path in work.khoanh_files())
    parcel_files = work.parcel_files()
    tables = [path for path in outputs.values() if path.parent == work.stats_dir]  # the forms read them
    record = digests_record(work, work.stats_dir)
    tell_kept(keep_hand_edits(record, tables), "statistics table")  # saved from Excel: kept beside, made again
    checked = [*outputs.values(), *([work.commune_overlaps] if overlapping else [])]
    if up_to_date(checked, [*files, *parcel_files, commune_set(work)]):
        return outputs
    manifest = work.read_manifest()
    units_of, parcels_of = {p.name: str(p) for p in files}, {p.name: str(p) for p in parcel_files}
    communes = sorted({*units_of, *parcels_of})  # file names, in the order of the files
    forget_versions_beside(work.figures_dir)
    source = files[0].parent.name  # figures summed from parcels are not those of the khoanh
    kept = {name: kept_figures(work.figures(source, name), units_of.get(name), parcels_of.get(name), work.manifest)
            for name in communes}
    todo = [name for name in communes if kept[name] is None]
    with ThreadPoolExecutor(1) as beside, executor(scheduler, shared=work.root) as pmap:
        # land two communes hold, looked for here while the figures' tasks wait for workers drawing sheets
        looking = beside.submit(copy_context().run, find_commune_overlaps, work, manifest.qa,
                                manifest.commune_names()) if overlapping else None
        # one task a commune: each task costs the client and the scheduler a few ms
        done = dict(zip(todo, pmap(commune_figures, [(units_of.get(name), parcels_of.get(name),
                                                     str(work.figures(source, name))) for name in todo]), strict=True))
        overlaps = looking.result() if looking else None
    figures = [kept[name] or done[name] for name in communes]
    parts = [areas for areas, _ in figures if areas is not None]
    statistics = [stats for _, stats in figures if stats is not None]
    # one commune per file, files in commune order: the concatenation keeps the circular's order
    areas = validate_areas(joined([a for a, _ in parts]))
    uncoded = joined([u for _, u in parts])
    summary = code_tree_totals(areas)
    with recording(record, tables):  # those changed by hand were set aside above
        out = {
            "areas": write_csv(work.areas_csv, areas),
            "summary": write_csv(work.summary_csv, summary),
            "report": write_text(work.report("aggregate.md"),
                                 aggregate_report(summary, uncoded, manifest.commune_names(), overlaps)),
            "owner_sources": write_csv(work.owner_sources_csv, joined([s for s, _ in statistics])),
            "holders": write_csv(work.holders_csv, joined([h for _, h in statistics])),
        }
    log.info("aggregate: %d communes (%d summed again), %.2f ha from %s → %s", areas["commune_code"].nunique(),
             len(todo), areas["area_m2"].sum() / 1e4, files[0].parent.name, work.areas_csv)
    return out


def aggregate_report(summary: pd.DataFrame, uncoded: pd.DataFrame | None = None,
                     names: dict[str, str] | None = None, overlaps: gpd.GeoDataFrame | None = None) -> str:
    """Readable per-commune totals, in Vietnamese: NNP + PNN + CSD = natural area;
    the land two communes both hold (``overlaps``, :mod:`.qa.between_communes`)."""
    heads = summary[summary["code"].isin([TOTAL_CODE, *NATURAL_AREA_GROUPS])]
    wide = heads.pivot(index="commune_code", columns="code", values="area_ha")  # rounded as the forms print it
    wide = wide[[*NATURAL_AREA_GROUPS, TOTAL_CODE]].reset_index()
    wide["commune_code"] = [unit_label(c, names or {}) for c in wide["commune_code"]]
    wide.columns = ["Đơn vị hành chính (mã)", "Đất nông nghiệp NNP (ha)", "Đất phi nông nghiệp PNN (ha)",
                    "Đất chưa sử dụng CSD (ha)", "Tổng diện tích tự nhiên (ha)"]
    return "\n".join([
        "# Diện tích theo nhóm đất (ha)",
        "",
        "Cộng bằng m² trong hệ tọa độ VN-2000 TM-3 của tỉnh, làm tròn đến 0,01 ha như trên các biểu (tổng diện "
        "tích tự nhiên của xã làm tròn một lần, các mã chi tiết phân bổ để cộng đúng bằng tổng đó).",
        "Tổng diện tích tự nhiên = NNP + PNN + CSD. Chi tiết theo mã loại đất: `stats/summary.csv`; "
        "theo mã loại đất × đối tượng sử dụng, quản lý: `stats/areas.csv`.",
        "",
        markdown_table(wide),
        "",
        *([f"Khoảng hở không có thửa (không đưa vào thống kê, cán bộ cần xác định loại đất): "
           f"{len(uncoded)} khoanh, {vn_number(uncoded['area_m2'].sum() / 1e4, 4)} ha — xem reports/qa.md.", ""]
          if uncoded is not None and len(uncoded) else []),
        *(overlaps_section(overlaps, names or {}) if overlaps is not None else []),
    ])
