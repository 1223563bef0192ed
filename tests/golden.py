"""Golden snapshot of the sample's outputs: what a refactor must not change.

``snapshot(workdir)`` digests ``stats/areas.csv`` (kept whole, compared with a
relative tolerance), every form CSV (SHA-256 of the bytes) and every table of
the GeoPackage (columns, row count and a digest of the rows, with floats at 9
significant digits and coordinates at 1 mm, so that GEOS/PROJ versions' last
bits do not count). ``tests/golden/sample.json`` holds the snapshot of the
last accepted run; after a change of outputs that is meant, refresh it with

    .venv/bin/python -m tests.golden data/processed

(after ``make inventory``) and commit it with the change that explains it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

GOLDEN = Path(__file__).resolve().parent / "golden"
SNAPSHOT = GOLDEN / "sample.json"
AREAS = GOLDEN / "areas.csv"


def _canonical(value: object) -> str:
    if isinstance(value, float):
        return "nan" if np.isnan(value) else f"{value:.9g}"
    if isinstance(value, bytes):
        return _geometry_digest(value)
    return repr(value)


def _geometry_digest(blob: bytes) -> str:
    """A GeoPackage geometry blob → WKB of the geometry with coordinates at 1 mm."""
    flags = blob[3]
    envelope = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[(flags >> 1) & 0b111]
    geom = shapely.from_wkb(blob[8 + envelope:])
    rounded = shapely.transform(geom, lambda xy: np.round(xy, 3))
    return hashlib.sha256(shapely.to_wkb(shapely.normalize(rounded))).hexdigest()[:16]


def _relative(source_file: object) -> object:
    """A raw file's path without the folder the sample was copied to."""
    return "/".join(str(source_file).split("/")[-3:]) if isinstance(source_file, str) else source_file


def gpkg_tables(path: Path) -> dict[str, dict]:
    """Per table of the GeoPackage: columns, row count, digest of the rows."""
    out = {}
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT table_name FROM gpkg_contents ORDER BY table_name")]
        for table in tables:
            cursor = db.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            keep = [i for i, c in enumerate(columns) if c not in ("fid", "id", "update_time")]
            where = columns.index("source_file") if "source_file" in columns else -1
            rows = sorted("|".join(_canonical(_relative(row[i]) if i == where else row[i]) for i in keep)
                          for row in cursor)
            out[table] = {"columns": [columns[i] for i in keep], "rows": len(rows),
                          "digest": hashlib.sha256("\n".join(rows).encode()).hexdigest()}
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
        if expected["gpkg"]["tables"].get(table) != actual["gpkg"]["tables"].get(table):
            problems.append(f"GeoPackage table {table} differs")
    return problems


def update(workdir: Path) -> None:
    """Accept a work directory's outputs as the new golden snapshot."""
    GOLDEN.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps(snapshot(workdir), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    AREAS.write_bytes((Path(workdir) / "stats" / "areas.csv").read_bytes())


if __name__ == "__main__":
    update(Path(sys.argv[1] if len(sys.argv) > 1 else "data/processed"))
    print(f"golden snapshot updated from {sys.argv[1:] or 'data/processed'} → {SNAPSHOT}")
