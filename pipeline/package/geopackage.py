"""The GeoPackage file, made under a scratch name and renamed when complete:
the one written before, copied and patched where its sources changed, else
written whole. When one commune's files are new, its rows are deleted from
each layer (by the fids a ledger recorded for each part) and its rows of now
appended, instead of writing a million parcels again. Rows made in memory (boundaries, the area
tables) are written anew every time; whatever the ledger cannot vouch for (a
GeoPackage touched since, another kiemke, other layers or columns, most parts
changed) is written whole.

The ledger (JSON beside the work's cache) records, per layer in order, its
title, columns and, per part, the signature of its source files (path,
mtime, size), its rows, first fid and extent."""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
from pathlib import Path

import pyarrow as pa

from ..build import kiemke_build
from ..io import scratch_beside, union_bounds, write_text
from ..messages import officer_message
from ..records import set_aside
from .ahead import take_copy
from .gpkg import GpkgLayer, Part
from .gpkg_write import (
    Chunk,
    Written,
    read_chunks,
    unsynchronised_sqlite,
    with_columns,
    write_chunks,
    write_layer_styles,
    write_layers,
)
from .kept import carry_into, kiemke_contents, planners_work, record_written

log = logging.getLogger(__name__)

#: Patching rewrites at most this share of the parts with source files; beyond it, the whole file is written.
MOST_PARTS = 0.5


class NotPatchable(Exception):
    """The GeoPackage written before cannot become this one by patching (the reason)."""


def signature(sources: tuple[Path, ...] | None) -> list | None:
    """The source files as they are now: modification time (ns) and size, each
    (None when missing); not their paths, which a work folder moved elsewhere changes."""
    if sources is None:
        return None
    out = []
    for path in sources:
        try:
            out.append(file_signature(path))
        except FileNotFoundError:
            out.append([None, None])
    return out


def file_signature(path: Path) -> list:
    stat = path.stat()
    return [stat.st_mtime_ns, stat.st_size]


def part_record(chunk: Chunk, first_fid: int | None) -> dict:
    """A part as the ledger keeps it."""
    bounds = None if chunk.bounds is None else [float(v) for v in chunk.bounds]
    return {"signature": signature(chunk.part.sources), "rows": chunk.rows,
            "first_fid": first_fid if chunk.rows else None, "bounds": bounds}


def unwritten(part: Part) -> dict:
    """A part of a layer left out for want of rows, as the ledger keeps it."""
    return {"signature": signature(part.sources), "rows": 0}


def numbered(chunks: list[Chunk], first_fid: int) -> dict[str, dict]:
    """Records of parts written in order, their rows numbered from ``first_fid``."""
    records = {}
    for chunk in chunks:
        records[chunk.part.key] = part_record(chunk, first_fid)
        first_fid += chunk.rows
    return records


def layer_entry(layer: GpkgLayer, parts: dict[str, dict], schema: pa.Schema | None) -> dict:
    return {"name": layer.name, "title": layer.title, "description": layer.description, "spatial": layer.spatial,
            "schema": None if schema is None else base64.b64encode(schema.serialize().to_pybytes()).decode(),
            "parts": parts}


def entry_schema(entry: dict) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(entry["schema"])))


def full_ledger(layers: list[GpkgLayer], written: list[Written], gpkg: Path) -> dict | None:
    """The ledger of a GeoPackage written whole (fids 1… in each layer, as
    checked in the file); None when the file numbers them otherwise."""
    done = {w.layer.name: w for w in written}
    entries = []
    with sqlite3.connect(gpkg) as db:
        for layer in layers:
            if layer.name not in done:  # optional, no rows: its parts' signatures say when that may change
                entries.append(layer_entry(layer, {p.key: unwritten(p) for p in layer.rows.parts}, None))
                continue
            chunks = done[layer.name].chunks
            total = sum(chunk.rows for chunk in chunks)
            if rows_after(db, layer.name, 0) != (total, total):
                return None
            entries.append(layer_entry(layer, numbered(chunks, 1), done[layer.name].schema))
    return {"kiemke": kiemke_build(), "layers": entries}


def read_ledger(ledger: Path, gpkg: Path, context: str) -> dict:
    """The ledger of ``gpkg``, when it vouches for the file as it is."""
    if not ledger.exists() or not gpkg.exists():
        raise NotPatchable("no GeoPackage written before")
    record = json.loads(ledger.read_text(encoding="utf-8"))
    if record.get("kiemke") != kiemke_build() or record.get("context") != context:
        raise NotPatchable("written by another version or with other settings")
    if record.get("gpkg") != file_signature(gpkg):
        raise NotPatchable("the GeoPackage was changed since")
    return record


def save_ledger(ledger: Path, record: dict | None, gpkg: Path, context: str) -> None:
    if record is None:
        ledger.unlink(missing_ok=True)
        return
    write_text(ledger, json.dumps({**record, "context": context, "gpkg": file_signature(gpkg)}))


def stale_and_fresh(layer: GpkgLayer, entry: dict) -> tuple[dict[str, dict], dict[str, dict], list[Part]]:
    """The recorded parts kept and those gone or changed, and the parts to write."""
    recorded = entry["parts"]
    fresh = [part for part in layer.rows.parts if part.sources is None or part.key not in recorded
             or recorded[part.key]["signature"] != signature(part.sources)]
    current = {part.key for part in layer.rows.parts} - {part.key for part in fresh}
    kept = {key: record for key, record in recorded.items() if key in current}
    stale = {key: record for key, record in recorded.items() if key not in current}
    return kept, stale, fresh


def append_parts(path: Path, layer: GpkgLayer, schema: pa.Schema, parts: list[Part], crs) -> list[Chunk]:
    """Append the parts' rows to the layer (as its columns: a part with a
    column the layer lacks cannot be patched in); the parts as written."""
    seen: list[Chunk] = []
    strangers: set[str] = set()

    def chunks():
        for chunk in read_chunks(parts, layer.spatial):
            seen.append(chunk.spent())
            if chunk.table is not None:
                strangers.update(set(chunk.table.column_names) - set(schema.names))
            yield chunk

    write_chunks(path, layer, schema, chunks(), crs, create=False)
    if strangers:
        raise NotPatchable(f"{layer.name}: new columns {sorted(strangers)}")
    return seen


def patch_layer(path: Path, layer: GpkgLayer, entry: dict, split: tuple[dict, dict, list[Part]],
                crs) -> tuple[GpkgLayer | None, dict]:
    """Bring one layer of the copied GeoPackage up to date (``split``: its
    :func:`stale_and_fresh` parts); the layer as written (None: left out, no
    rows) and its ledger entry."""
    if (entry["title"], entry["description"], entry["spatial"]) != (layer.title, layer.description, layer.spatial):
        raise NotPatchable(f"{layer.name}: another title or kind")
    kept, stale, fresh = split
    if entry["schema"] is None:  # left out for want of rows: still none?
        if any(chunk.rows for chunk in read_chunks(fresh, layer.spatial)):
            raise NotPatchable(f"{layer.name} has rows now")
        return None, layer_entry(layer, kept | {p.key: unwritten(p) for p in fresh}, None)
    schema = entry_schema(entry)
    if layer.rows.schema is not None and not layer.rows.schema.equals(schema):
        raise NotPatchable(f"{layer.name}: other columns")
    if not (stale or fresh):
        bounds = extent(layer, kept)
        return with_columns(layer, schema, bounds), layer_entry(layer, kept, schema)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA synchronous = OFF")
        db.executemany(f'DELETE FROM "{layer.name}" WHERE fid BETWEEN ? AND ?',
                       [(r["first_fid"], r["first_fid"] + r["rows"] - 1) for r in stale.values() if r["rows"]])
        before = last_fid(db, layer.name)
    chunks = append_parts(path, layer, schema, fresh, crs)
    expected = sum(chunk.rows for chunk in chunks)
    kept |= numbered(chunks, before + 1)
    bounds = extent(layer, kept)
    with sqlite3.connect(path) as db:
        count, top = rows_after(db, layer.name, before)
        if count != expected or (expected and top != before + expected):
            raise NotPatchable(f"{layer.name}: rows numbered otherwise")
        if layer.optional and not sum(r["rows"] for r in kept.values()):
            raise NotPatchable(f"{layer.name} has no rows now")
        if bounds is not None:  # GDAL grew the extent for the rows added, never shrinks it
            db.execute("UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ? WHERE table_name = ?",
                       (*bounds, layer.name))
    return with_columns(layer, schema, bounds), layer_entry(layer, kept, schema)


def extent(layer: GpkgLayer, parts: dict[str, dict]) -> tuple[float, float, float, float] | None:
    """A spatial layer's extent from its parts' records (None for a table without shapes, or without rows)."""
    return union_bounds(r.get("bounds") for r in parts.values()) if layer.spatial else None


def rows_after(db: sqlite3.Connection, table: str, fid: int) -> tuple[int, int]:
    """How many rows of ``table`` have a fid above ``fid``, and the highest fid (0 when none)."""
    return db.execute(f'SELECT count(*), coalesce(max(fid), 0) FROM "{table}" WHERE fid > ?', (fid,)).fetchone()


def last_fid(db: sqlite3.Connection, table: str) -> int:
    """The highest fid the table ever gave (its AUTOINCREMENT sequence), so that appended rows come after it."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    top = db.execute(f'SELECT coalesce(max(fid), 0) FROM "{table}"').fetchone()[0]
    return max(row[0] if row else 0, top)


def patch_geopackage(path: Path, layers: list[GpkgLayer], crs, record: dict) -> tuple[list[GpkgLayer], dict]:
    """Patch ``path`` (a copy of the GeoPackage ``record`` describes) into the
    one ``layers`` make; the layers written and the new ledger."""
    entries = record["layers"]
    if [entry["name"] for entry in entries] != [layer.name for layer in layers]:
        raise NotPatchable("other layers")
    splits = [stale_and_fresh(layer, entry) for layer, entry in zip(layers, entries, strict=True)]
    parts = sum(1 for layer in layers for part in layer.rows.parts if part.sources is not None)
    changed = sum(len(fresh) for layer, (_, _, fresh) in zip(layers, splits, strict=True)
                  if any(p.sources is not None for p in layer.rows.parts))
    if parts and changed > MOST_PARTS * parts:
        raise NotPatchable(f"{changed} of {parts} parts changed")
    written, new_entries = [], []
    for layer, entry, split in zip(layers, entries, splits, strict=True):
        done, new_entry = patch_layer(path, layer, entry, split, crs)
        written += [done] if done is not None else []
        new_entries.append(new_entry)
    log.info("package: GeoPackage patched where %d of %d parts changed", changed, parts)
    return written, {"kiemke": kiemke_build(), "layers": new_entries}


def write_geopackage(path: Path, layers: list[GpkgLayer], crs, ledger: Path | None = None,
                     context: str = "", record: Path | None = None) -> list[GpkgLayer]:
    """Write the layers (GeoPackage 1.2, spatial indexes), then titles and
    styles; the layers written, with their columns and extents. With a
    ``ledger``, the GeoPackage written before with the same ``context`` (the
    settings the rows depend on besides their files) is patched when it can
    be, and the ledger kept for the next time. With a ``record`` of the file
    as last written, what a planner made in it since is kept (``kept``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    planners = planners_work(record, path) if record else None
    tmp = scratch_beside(path, ".gpkg")
    try:
        with unsynchronised_sqlite():
            written, ledger_record = patched(path, tmp, layers, crs, ledger, context) if ledger else (None, None)
            if written is None:
                tmp.unlink(missing_ok=True)
                done = write_layers(tmp, layers, crs)
                written = [w.layer for w in done]
                ledger_record = full_ledger(layers, done, tmp) if ledger else None
        write_layer_styles(tmp, [layer.style for layer in written if layer.style is not None], written)
        names = [layer.name for layer in written]
        contents = kiemke_contents(tmp, names) if record else None
        lost = carry_into(planners, tmp, names) if planners else []
        with open(tmp, "rb") as finished:  # on disk before it takes the product's name
            os.fsync(finished.fileno())
        if lost:
            aside = set_aside(path)
            for why in lost:
                log.warning(officer_message(f"{path}: {why}, so that GeoPackage is kept as {aside}"))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        for extra in (tmp.with_name(tmp.name + "-journal"), tmp.with_name(tmp.name + "-wal")):
            extra.unlink(missing_ok=True)
    if ledger:
        save_ledger(ledger, ledger_record, path, context)
    if record:
        record_written(record, path, contents or {})
    return written


def patched(previous: Path, tmp: Path, layers: list[GpkgLayer], crs, ledger: Path,
            context: str) -> tuple[list[GpkgLayer] | None, dict | None]:
    """``previous`` copied to ``tmp`` and patched into the GeoPackage of
    ``layers``: the layers written and the new ledger; (None, None) when it
    cannot be (said in the log), ``tmp`` then to be written whole."""
    try:
        record = read_ledger(ledger, previous, context)
        take_copy(previous, tmp)  # made ahead when the run could (see .ahead)
        return patch_geopackage(tmp, layers, crs, record)
    except NotPatchable as why:
        log.info("package: GeoPackage written whole (%s)", why)
    except (sqlite3.DatabaseError, json.JSONDecodeError, KeyError) as error:  # a damaged file or ledger
        log.warning("package: GeoPackage written whole: the one written before could not be patched (%s)", error)
    return None, None
