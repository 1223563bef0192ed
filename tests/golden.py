"""Golden snapshot of the sample's outputs: what a refactor must not change.

``snapshot(workdir)`` digests ``stats/areas.csv`` (kept whole, compared with a
relative tolerance), every form CSV (SHA-256 of the bytes) and every table of
the GeoPackage: its columns, its row count, a digest of what each row holds
exactly (texts, integers, which values are missing) and, for its numbers and
geometries, weighted sums compared with a tolerance (:func:`table_measures`).
Another PROJ or GEOS moves coordinates by a few nanometres and may put a
vertex a fraction of a millimetre to one side of a neighbour's boundary; no
rounding of each value hides that from a digest (a value near the rounding's
edge flips), a tolerance does. ``tests/golden/sample.json`` holds the snapshot
of the last accepted run; after a change of outputs that is meant, refresh it with

    .venv/bin/python -m tests.golden data/processed

(after ``make inventory``) and commit it with the change that explains it.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

GOLDEN = Path(__file__).resolve().parent / "golden"
SNAPSHOT = GOLDEN / "sample.json"
AREAS = GOLDEN / "areas.csv"
SKIPPED_COLUMNS = ("fid", "id", "update_time")
#: Per geometry, what is summed, and within what a sum may differ (m², m): a
#: vertex moved 0.2 mm off a 10 m side, a parcel moved 0.2 mm, is a change.
#: Not its length: a needle of no width along a side, which an overlay leaves
#: or not by the last bits of its input, adds twice its own length.
GEOMETRY_TOLERANCE = {"area": 1e-3, "x": 1e-4, "y": 1e-4}
#: A number column's sums may differ by this share of its largest value, times √rows.
RELATIVE_TOLERANCE = 1e-9


def _canonical(value: object) -> str:
    if isinstance(value, float):  # only columns of no declared type (SQLite's own tables) hold them here
        return "nan" if np.isnan(value) else f"{value:.9g}"
    return repr(value)


def _geometry(blob: bytes | None):
    """A GeoPackage geometry blob → the shapely geometry (None for none)."""
    if blob is None:
        return None
    envelope = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[(blob[3] >> 1) & 0b111]
    return shapely.from_wkb(blob[8 + envelope:])


def _relative(source_file: object) -> object:
    """A raw file's path without the folder the sample was copied to."""
    return "/".join(str(source_file).split("/")[-3:]) if isinstance(source_file, str) else source_file


def _weights(keys: list[str]) -> np.ndarray:
    """Two weights a row, each ±(1 to 2), drawn from what the row holds exactly:
    a sum of values so weighted moves when one row's value does, and the last
    bits every value gained cancel out instead of adding up (random signs)."""
    draws = np.array([np.frombuffer(hashlib.sha256(k.encode()).digest()[:4], dtype=np.uint16) for k in keys],
                     dtype=float).reshape(len(keys), 2)
    return np.where(draws % 2 == 1, -1.0, 1.0) * (1.0 + draws / 65536.0)


def _weighted_sums(values: np.ndarray, weights: np.ndarray) -> list[float]:
    kept = ~np.isnan(values)
    return [math.fsum((values * weights[:, k])[kept].tolist()) for k in range(2)]


def table_measures(columns: list[str], rows: list[tuple], numbers: set[str],
                   geometry: str | None) -> tuple[str, dict]:
    """A table's digest of what its rows hold exactly (with which of its
    numbers and geometries are missing), and its measures: per number column
    and per geometry measure (area, centroid x and y), two weighted
    sums and the tolerance they are compared within."""
    measured = [i for i, c in enumerate(columns) if c in numbers or c == geometry]
    exact = [i for i in range(len(columns)) if i not in measured]
    keys = ["|".join(_canonical(row[i]) for i in exact) + "|" + "".join("-" if row[i] is None else "+"
                                                                        for i in measured) for row in rows]
    weights = _weights(keys)
    measures = {}
    for i in measured:
        if columns[i] == geometry:
            geoms = np.array([_geometry(row[i]) for row in rows], dtype=object)
            centroids = shapely.centroid(geoms)
            for name, values in (("area", shapely.area(geoms)), ("x", shapely.get_x(centroids)),
                                 ("y", shapely.get_y(centroids))):
                measures[f"{geometry}.{name}"] = {"sums": _weighted_sums(np.asarray(values, dtype=float), weights),
                                                  "tolerance": GEOMETRY_TOLERANCE[name]}
            continue
        values = np.array([np.nan if row[i] is None else row[i] for row in rows], dtype=float)
        largest = float(np.nanmax(np.abs(values))) if (~np.isnan(values)).any() else 0.0
        measures[columns[i]] = {"sums": _weighted_sums(values, weights),
                                "tolerance": RELATIVE_TOLERANCE * max(largest, 1.0) * math.sqrt(len(rows))}
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest(), measures


def gpkg_tables(path: Path) -> dict[str, dict]:
    """Per table of the GeoPackage: columns, row count, digest of what its
    rows hold exactly, measures of its numbers and geometries."""
    out = {}
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT table_name FROM gpkg_contents ORDER BY table_name")]
        geometries = dict(db.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall())
        for table in tables:
            declared = {name: kind.upper() for _, name, kind, *_ in db.execute(f'PRAGMA table_info("{table}")')}
            cursor = db.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            keep = [i for i, c in enumerate(names) if c not in SKIPPED_COLUMNS]
            where = names.index("source_file") if "source_file" in names else -1
            rows = [tuple(_relative(row[i]) if i == where else row[i] for i in keep) for row in cursor]
            columns = [names[i] for i in keep]
            numbers = {c for c in columns if declared.get(c) in ("REAL", "FLOAT", "DOUBLE")}
            digest, measures = table_measures(columns, rows, numbers, geometries.get(table))
            out[table] = {"columns": columns, "rows": len(rows), "digest": digest, "measures": measures}
    return out


def snapshot(workdir: Path) -> dict:
    """The digest of a work directory's outputs (see the module docstring)."""
    workdir = Path(workdir)
    forms = {str(p.relative_to(workdir)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted((workdir / "forms").rglob("*.csv"))}
    gpkg = next(workdir.glob("*.gpkg"))
    return {"forms": forms, "gpkg": {"file": gpkg.name, "tables": gpkg_tables(gpkg)}}


def differences(workdir: Path) -> list[str]:
    """What differs between a work directory and the golden snapshot."""
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    actual = snapshot(workdir)
    problems = []
    old = pd.read_csv(AREAS, dtype={"commune_code": str})
    new = pd.read_csv(Path(workdir) / "stats" / "areas.csv", dtype={"commune_code": str})
    keys = ["commune_code", "landuse", "owner_type"]
    if not old[keys].equals(new[keys]):
        problems.append("stats/areas.csv: other rows or another order")
    elif not np.allclose(old["area_m2"], new["area_m2"], rtol=1e-9, atol=1e-6):
        problems.append("stats/areas.csv: areas differ")
    for name in sorted(set(expected["forms"]) | set(actual["forms"])):
        if expected["forms"].get(name) != actual["forms"].get(name):
            state = "missing" if name not in actual["forms"] else "new" if name not in expected["forms"] else "differs"
            problems.append(f"{name}: {state}")
    if expected["gpkg"]["file"] != actual["gpkg"]["file"]:
        problems.append(f"GeoPackage named {actual['gpkg']['file']}, was {expected['gpkg']['file']}")
    for table in sorted(set(expected["gpkg"]["tables"]) | set(actual["gpkg"]["tables"])):
        problems += [f"GeoPackage table {table}: {what}"
                     for what in table_differences(expected["gpkg"]["tables"].get(table),
                                                   actual["gpkg"]["tables"].get(table))]
    return problems


def table_differences(expected: dict | None, actual: dict | None) -> list[str]:
    """What differs between two snapshots of a table: its columns, rows, what
    they hold exactly, or a measure beyond the accepted one's tolerance."""
    if expected is None or actual is None:
        return ["missing" if actual is None else "new"]
    problems = [what for what in ("columns", "rows", "digest") if expected[what] != actual[what]]
    for name in sorted(set(expected["measures"]) | set(actual["measures"])):
        was, now = expected["measures"].get(name), actual["measures"].get(name)
        if was is None or now is None or any(abs(a - b) > was["tolerance"]
                                             for a, b in zip(was["sums"], now["sums"], strict=True)):
            problems.append(f"{name} differs")
    return problems


def update(workdir: Path) -> None:
    """Accept a work directory's outputs as the new golden snapshot."""
    GOLDEN.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps(snapshot(workdir), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    AREAS.write_bytes((Path(workdir) / "stats" / "areas.csv").read_bytes())


if __name__ == "__main__":
    update(Path(sys.argv[1] if len(sys.argv) > 1 else "data/processed"))
    print(f"golden snapshot updated from {sys.argv[1:] or 'data/processed'} → {SNAPSHOT}")
