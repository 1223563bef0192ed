"""The ingest cache: one source file's result, kept until the file, its
overrides or the settings change, so that a second run reads nothing again."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import crs as vn
from ..build import kiemke_build
from ..config import Settings
from ..errors import CRSError, InputFileError
from ..io import atomic_path, file_stamp, write_geoparquet, write_json, write_text
from ..paths import spelled, spelled_fields
from ..schemas import validate_parcels
from .corrections import by_number, fingerprint, holding, in_communes, number_keys
from .file import ingest_file
from .read import Source
from .report import FileReport

#: The sheet/parcel numbers an entry's file holds (its parcels' and quarantined ones'), for the corrections by number.
NUMBERS = "numbers.parquet"


class IngestCache:
    """One source file's ingest result, kept until the file, its overrides, the
    settings or the corrections that can reach its parcels change (fingerprint
    of sizes and modification times of every part)."""

    def __init__(self, root: Path, source: Source, settings: Settings, corrections: pd.DataFrame | None = None,
                 unnamed: str | None = None):
        files = [source.path, *(lines.path for lines in source.lines)]
        if settings.forest is not None:  # the forest status map refines this file's forest parcels
            files.append(settings.forest.path)
        if settings.boundaries is not None:  # they place the parcels of a file that names no commune
            files.append(settings.boundaries.path)
        # the files by their paths from the raw-data folder: the same entries when the project folder is moved
        raw = settings.input_root
        label = spelled(source.label, raw)
        stamp = [(spelled(name, raw), size, time) for path in files for name, size, time in file_stamp(path)]
        self._key = [label, stamp, repr(settings.override_for(source.path)),
                     settings.province.gso_code, settings.year, repr(settings.column_aliases), repr(settings.compound),
                     repr(settings.refine), repr(spelled_fields(settings.forest, raw)),
                     repr(spelled_fields(settings.boundaries, raw)), settings.regime]
        self._after = [unnamed, kiemke_build()]
        self._corrections = corrections
        self.folder = root / hashlib.sha1(label.encode()).hexdigest()[:20]
        reach = corrections
        if corrections is not None and (self.folder / "report.json").exists():  # as its last read found it
            reach = in_communes(corrections, self.read_report(self.folder).communes)
            if by_number(reach):
                reach = holding(reach, self._numbers())
        self.fingerprint = self._fingerprint(reach)

    def _fingerprint(self, reach: pd.DataFrame | None) -> str:
        """The entry's fingerprint, with the corrections that can name its
        parcels (``reach``): one by number of another commune's parcel, or of a
        number the file does not hold, does not make it be read again."""
        key = [*self._key, fingerprint(reach), *self._after]
        return hashlib.sha1(json.dumps(key, default=str).encode()).hexdigest()

    def _numbers(self) -> pa.Array | None:
        """The sheet/parcel numbers of the entry's parcels, quarantined ones
        too, as its read stored them (None for an entry of an earlier kiemke)."""
        try:
            return pq.read_table(self.folder / NUMBERS, columns=["number"]).column("number").combine_chunks()
        except (OSError, KeyError, pa.ArrowInvalid):
            return None

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
        numbers = self._store_numbers(parcels, quarantine)
        # last: marks the entry complete, for the corrections that can name its parcels
        write_text(self.folder / "fingerprint",
                   self._fingerprint(holding(in_communes(self._corrections, report.communes), numbers)))

    def _store_numbers(self, parcels: gpd.GeoDataFrame, quarantine: gpd.GeoDataFrame) -> pa.Array:
        """Store (and give) the sheet/parcel numbers of a read's parcels, quarantined ones too."""
        rows = [frame.reindex(columns=["sheet_no", "parcel_no"]) for frame in (parcels, quarantine)]
        keys = {key for r in rows for key in number_keys(r["sheet_no"], r["parcel_no"])}
        numbers = pa.array(sorted(keys), pa.string())
        with atomic_path(self.folder / NUMBERS) as tmp:
            pq.write_table(pa.table({"number": numbers}), tmp)
        return numbers


def ingest_to_cache(cache: IngestCache, source: Source, settings: Settings,
                    corrections: pd.DataFrame | None = None, unnamed: str | None = None) -> None:
    """Task: ingest one file (with the officer's corrections of it, ``unnamed``
    the name of its features whose commune nothing says) into its cache entry
    (one found not current by the stage). Runs on a worker."""
    try:
        parcels, quarantine, report = ingest_file(source, settings, corrections=corrections, unnamed=unnamed)
        validate_parcels(parcels, crs=vn.province_crs(settings.province))
        cache.store(parcels, quarantine, report)
    except (CRSError, InputFileError) as exc:
        raise type(exc)(str(exc) if source.label in str(exc) else f"{source.label}: {exc}") from None
