"""What a planner makes in the GeoPackage after kiemke wrote it, kept when a
later run writes it again.

kiemke records the file as it wrote it: its size and time, the time GDAL
stamps on each of its layers when it changes one (``gpkg_contents.last_change``)
and a digest of each style row. What differs from that record is the
planner's work in QGIS:

- the planner's own layers and tables, the styles saved from QGIS (rows
  kiemke did not write as they are) and the projects QGIS stored in the file
  are carried into the new GeoPackage; a style saved as a layer's default
  stays its default;
- a GeoPackage whose kiemke layers were edited, or whose own layer has the
  name of one kiemke now writes, is set aside (``records.set_aside``) before
  the new file takes its name.

Each is said on the console, in Vietnamese, with what to do. (A QGIS
project saved by the planner is set aside whole: ``records.rewriting``.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pyogrio
import pyogrio.errors

from ..io import write_json
from ..messages import officer_message

log = logging.getLogger(__name__)

KIEMKE = "kiemke"  # the owner of the styles kiemke writes
STYLE_COLUMNS = ("f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column", "styleName", "styleQML",
                 "styleSLD", "useAsDefault", "description", "owner", "ui")
STORED_PROJECTS = "qgis_projects"  # where QGIS keeps the projects saved into a GeoPackage
VECTOR = ("features", "attributes", "aspatial")  # what GDAL copies as vector data ("aspatial": before GeoPackage 1.2)


def stamp(path: Path) -> list[list]:
    """The file and its write-ahead log as they are: name, size, time."""
    parts = [path, path.with_name(path.name + "-wal")]
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in parts if p.exists()]


def _styles(db: sqlite3.Connection) -> dict[int, str]:
    """The digest of each ``layer_styles`` row by its id, whether it is its
    layer's default aside (QGIS unsets kiemke's when a planner saves a default)."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'layer_styles'").fetchone():
        return {}
    described = [c for c in STYLE_COLUMNS if c != "useAsDefault"]
    rows = db.execute(f"SELECT id, {', '.join(described)} FROM layer_styles").fetchall()
    return {row[0]: hashlib.sha256(json.dumps(row[1:], ensure_ascii=False, default=str).encode()).hexdigest()
            for row in rows}


def _tables(db: sqlite3.Connection) -> dict[str, str]:
    """Each layer or table of a GeoPackage and the time it last changed."""
    return dict(db.execute("SELECT table_name, last_change FROM gpkg_contents"))


def kiemke_contents(gpkg: Path, written: list[str]) -> dict:
    """What kiemke wrote into ``gpkg``, its layers ``written`` and its styles, before the planner's work joins them."""
    with closing(sqlite3.connect(gpkg)) as db:
        layers = {t: when for t, when in _tables(db).items() if t in written or t == "layer_styles"}
        return {"layers": layers, "styles": sorted(set(_styles(db).values()))}


def record_written(record: Path, path: Path, contents: dict) -> None:
    """Record the GeoPackage ``path`` as kiemke just wrote it (``kiemke_contents``)."""
    write_json(record, {"stamp": stamp(path), **contents})


def _read(record: Path, path: Path) -> dict | None:
    """The record of ``path`` (None when either is missing)."""
    if not record.exists() or not path.exists():
        return None
    return json.loads(record.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class PlannersWork:
    """What a GeoPackage holds that kiemke did not write."""

    path: Path
    changed: bool  # since kiemke wrote it (else its work was carried before, and is not told again)
    tables: list[str]  # layers and tables of the planner's own
    styles: list[int]  # ``layer_styles`` rows saved from QGIS
    projects: bool  # projects QGIS stored in the file
    edited: list[str]  # kiemke's layers edited since it wrote them


def planners_work(record: Path, gpkg: Path) -> PlannersWork | None:
    """What ``gpkg`` holds that kiemke did not write as it is (None when nothing)."""
    written = _read(record, gpkg)
    if written is None:
        return None
    with closing(sqlite3.connect(gpkg)) as db:
        now = _tables(db)
        recorded = set(written["styles"])
        styles = [i for i, digest in _styles(db).items() if digest not in recorded]
        projects = db.execute(f"SELECT 1 FROM sqlite_master WHERE name = '{STORED_PROJECTS}'").fetchone() is not None
    ours = written["layers"]
    work = PlannersWork(gpkg, written["stamp"] != stamp(gpkg), [t for t in now if t not in ours], styles, projects,
                        [t for t in ours if t != "layer_styles" and t in now and now[t] != ours[t]])
    return work if work.tables or work.styles or work.projects or work.edited else None


def _copy_layer(source: Path, target: Path, name: str, identifier: str, description: str) -> None:
    """A layer or table of ``source`` into ``target`` through GDAL, with its fids."""
    meta, table = pyogrio.read_arrow(source, layer=name, return_fids=True)
    spatial = meta["geometry_type"] is not None
    pyogrio.write_arrow(table, target, layer=name, driver="GPKG", append=True,
                        geometry_name=meta["geometry_name"] if spatial else None,
                        geometry_type=meta["geometry_type"], crs=meta["crs"] if spatial else None,
                        layer_options={"FID": meta["fid_column"] or "fid", "IDENTIFIER": identifier or name,
                                       "DESCRIPTION": description or ""})


def _carry_layers(source: Path, target: Path, tables: list[str]) -> list[str]:
    """Copy the layers and tables ``tables`` of ``source`` that ``target`` has
    not (a GeoPackage patched holds what was carried before); those GDAL
    cannot copy as vector data (a raster's tiles)."""
    with closing(sqlite3.connect(target)) as db:
        present = _tables(db)
    with closing(sqlite3.connect(source)) as db:
        described = {t: db.execute("SELECT data_type, identifier, description FROM gpkg_contents WHERE table_name = ?",
                                   (t,)).fetchone() for t in tables if t not in present}
    left = [t for t, (kind, _, _) in described.items() if kind not in VECTOR]
    for table, (_, identifier, description) in described.items():
        try:
            if table not in left:
                _copy_layer(source, target, table, identifier, description)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError):
            left.append(table)
    return left


def _copy_styles(db: sqlite3.Connection, ids: list[int]) -> None:
    """Styles saved from QGIS into the new file (``old`` attached): one of a
    layer's default makes kiemke's not; one of kiemke's name takes its place."""
    columns = ", ".join(STYLE_COLUMNS)
    for style in ids:
        table, name, default = db.execute("SELECT f_table_name, styleName, useAsDefault FROM old.layer_styles "
                                          "WHERE id = ?", (style,)).fetchone()
        if default:
            db.execute("UPDATE main.layer_styles SET useAsDefault = 0 WHERE f_table_name = ?", (table,))
        db.execute("DELETE FROM main.layer_styles WHERE f_table_name = ? AND styleName = ? AND owner = ?",
                   (table, name, KIEMKE))
        db.execute(f"INSERT INTO main.layer_styles ({columns}) SELECT {columns} FROM old.layer_styles WHERE id = ?",
                   (style,))


def carry_into(work: PlannersWork, gpkg: Path, written: list[str]) -> list[str]:
    """The planner's work carried into the new ``gpkg`` (whose layers kiemke
    wrote are ``written``); the reasons the old file must be kept as well
    (empty when nothing of it would be lost)."""
    keep = [f"layers kiemke wrote were edited after it wrote them ({', '.join(work.edited)})"] if work.edited else []
    if clash := [t for t in work.tables if t in written]:
        keep.append(f"layers added in QGIS have the names of layers kiemke writes ({', '.join(clash)})")
    left = _carry_layers(work.path, gpkg, [t for t in work.tables if t not in written])
    if left:
        keep.append(f"layers added in QGIS that kiemke cannot copy into the new one ({', '.join(left)})")
    tables = [t for t in work.tables if t not in written and t not in left]
    with closing(sqlite3.connect(gpkg)) as db:
        db.execute("ATTACH DATABASE ? AS old", (str(work.path),))
        with db:  # one transaction
            _copy_styles(db, work.styles)
            stored = f"SELECT sql FROM {{}}.sqlite_master WHERE name = '{STORED_PROJECTS}'"
            if work.projects and not db.execute(stored.format("main")).fetchone():
                db.execute(db.execute(stored.format("old")).fetchone()[0])
                db.execute(f"INSERT INTO main.{STORED_PROJECTS} SELECT * FROM old.{STORED_PROJECTS}")
    carried = "after kiemke wrote the GeoPackage are carried into the new one"
    said = [*([f"layers added in QGIS {carried}: {', '.join(tables)}"] if tables else []),
            *([f"{len(work.styles)} styles saved from QGIS {carried}"] if work.styles else []),
            *(["the projects QGIS stored in the GeoPackage are carried into the new one"] if work.projects else [])]
    for message in said if work.changed else []:
        log.warning(officer_message(f"{work.path}: {message}"))
    return keep
