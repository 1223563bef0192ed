"""The work directory of a run: where every stage's outputs go, and the run
manifest that ingest records there for the later stages.

Every stage entry point has the shape ``run_<stage>(work: WorkDir, …)``; what
it needs of the configuration comes from :meth:`WorkDir.read_manifest`, a
frozen :class:`RunManifest`, never from an untyped dict.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd

from .build import kiemke_build
from .config import load_settings
from .errors import StageInputMissing
from .io import json_text, read_geoparquets, read_json, write_json, write_json_if_changed
from .manifest import RunManifest
from .regime import active_regime, use_regime

MANIFEST = "inventory.json"


def find_workdir(start: Path | None = None) -> Path:
    """The work directory of the inventory a notebook or script is run for:
    ``$KIEMKE_WORKDIR``, else the ``workdir`` of the first ``inventory.toml``
    found in ``start`` (the current folder) or a folder above it."""
    if os.environ.get("KIEMKE_WORKDIR"):
        return Path(os.environ["KIEMKE_WORKDIR"])
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "inventory.toml").is_file():
            return load_settings(folder / "inventory.toml").workdir
    raise StageInputMissing(f"No inventory.toml in {here} or above it; set KIEMKE_WORKDIR to the work directory.")


@dataclass(frozen=True)
class WorkDir:
    """The layout of a work directory (see DESIGN.md)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # folders
    @property
    def parcels_dir(self) -> Path:
        return self.root / "parcels"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def stats_dir(self) -> Path:
        return self.root / "stats"

    @property
    def qa_dir(self) -> Path:
        return self.root / "qa"

    @property
    def khoanh_dir(self) -> Path:
        return self.root / "khoanh"

    @property
    def change_dir(self) -> Path:
        return self.root / "change"

    @property
    def previous_dir(self) -> Path:
        """The previous inventory's layer, per commune, in the inventory CRS."""
        return self.change_dir / "previous"

    @property
    def review_dir(self) -> Path:
        """The review workbooks (``<commune>.xlsx``) and the record of the corrections applied."""
        return self.reports_dir / "review"

    @property
    def forms_dir(self) -> Path:
        return self.root / "forms"

    @property
    def maps_dir(self) -> Path:
        return self.root / "maps"

    @property
    def rasters_dir(self) -> Path:
        return self.root / "rasters"

    @property
    def styles_dir(self) -> Path:
        return self.root / "styles"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    # files
    def report(self, name: str) -> Path:
        """A report under ``reports/`` (``qa.md``, ``ingest.json`` …)."""
        return self.reports_dir / name

    def parcels(self, commune_code: str) -> Path:
        return self.parcels_dir / f"{commune_code}.parquet"

    def quarantine(self, commune_code: str) -> Path:
        return self.quarantine_dir / f"{commune_code}.parquet"

    def khoanh(self, commune_code: str) -> Path:
        return self.khoanh_dir / f"{commune_code}.parquet"

    def commune_outline(self, commune_code: str) -> Path:
        """The union of a commune's khoanh (written with them), its narrow gaps
        closed (:func:`.khoanh.khoanh_and_outline`): its outline where no
        boundary is given. Kept out of ``khoanh/``, which reads as one dataset."""
        return self.cache_dir / "outlines" / f"{commune_code}.parquet"

    def read_outlines(self, codes) -> gpd.GeoDataFrame:
        """The outlines the khoanh stage wrote for these communes (``commune_code``,
        geometry; no row for a commune without one)."""
        files = [path for path in map(self.commune_outline, codes) if path.exists()]
        if not files:
            return gpd.GeoDataFrame({"commune_code": []}, geometry=[])
        return read_geoparquets(files)

    @property
    def commune_overlaps(self) -> Path:
        """The QA layer of land two communes' khoanh both hold (:mod:`.qa.between_communes`)."""
        return self.qa_dir / "commune_overlaps.parquet"

    @property
    def commune_overlaps_dir(self) -> Path:
        """Each commune's overlaps with the communes after it, kept until their khoanh change."""
        return self.cache_dir / "commune_overlaps"

    def commune_overlaps_cache(self, commune_code: str) -> Path:
        return self.commune_overlaps_dir / f"{commune_code}.parquet"

    def overlap_pairs(self, commune_code: str) -> Path:
        """The overlapping parcels QA found in a commune (row numbers), for
        the khoanh stage: GEOS's coverage check runs once per commune."""
        return self.cache_dir / "overlaps" / f"{commune_code}.parquet"

    def edge_suspects(self, commune_code: str) -> Path:
        """The parcels (row numbers) whose edges GEOS's coverage check flags in a
        commune, for the khoanh stage's unions (see topology.union_coverage)."""
        return self.cache_dir / "overlaps" / f"{commune_code}.suspects.parquet"

    @property
    def figures_dir(self) -> Path:
        """This build's figures of each commune (``cache/figures/<build>/``, see :mod:`.build`)."""
        return self.cache_dir / "figures" / kiemke_build()

    def figures(self, source: str, name: str) -> Path:
        """The stem of a commune's figures kept by the aggregate stage, summed
        from its file ``name`` of ``source`` (``khoanh`` or, before that stage, ``parcels``)."""
        return self.figures_dir / source / name

    @property
    def province_cells_dir(self) -> Path:
        """The communes' khoanh burnt into the province's grid, one folder a grid
        (and a build of kiemke: its raster values)."""
        return self.cache_dir / "province_cells"

    def province_cells(self, commune_code: str, grid: str) -> Path:
        """A commune's khoanh burnt into the province's grid ``grid`` (see
        package.raster.save_cells), kept until its khoanh change."""
        return self.province_cells_dir / grid / f"{commune_code}.npz"

    def gpkg_ledger(self, name: str) -> Path:
        """What the package stage wrote into the GeoPackage ``name``, part by part (to patch it next time)."""
        return self.cache_dir / "package" / f"{name}.json"

    def written_record(self, name: str) -> Path:
        """The GeoPackage or QGIS project ``name`` as the package stage last wrote it (to tell a planner's work)."""
        return self.cache_dir / "package" / f"{name}.written.json"

    @property
    def generalised_dir(self) -> Path:
        """This build's generalised khoanh (``cache/generalised/<build>/``)."""
        return self.cache_dir / "generalised" / kiemke_build()

    def generalised(self, commune_code: str, scale: int) -> Path:
        """A commune's khoanh as a sheet at 1:``scale`` draws them (kept until
        its khoanh or kiemke's build change)."""
        return self.generalised_dir / str(scale) / f"{commune_code}.parquet"

    @property
    def linework_dir(self) -> Path:
        """This build's boundary lines of the district and province sheets (``cache/linework/<build>/``)."""
        return self.cache_dir / "linework" / kiemke_build()

    def linework(self, sheet: str) -> Path:
        """A sheet's boundary lines, each drawn once (kept until its boundaries change)."""
        return self.linework_dir / f"{sheet}.parquet"

    def change(self, commune_code: str) -> Path:
        """The overlay pieces of a commune: previous khoanh ∩ current khoanh."""
        return self.change_dir / f"{commune_code}.parquet"

    def previous(self, commune_code: str) -> Path:
        """The previous inventory's layer of a commune, in the contract's CRS."""
        return self.previous_dir / f"{commune_code}.parquet"

    def form_folder(self, level: str, code: str) -> Path:
        return self.forms_dir / level / code

    def unit_raster(self, level: str, code: str) -> Path:
        """``rasters/<level>_<code>.tif``: a commune's or district's GeoTIFF."""
        return self.rasters_dir / f"{level}_{code}.tif"

    def map_stem(self, level: str, code: str, kind: str = "current") -> Path:
        """``maps/<level>_<code>`` (current use) or ``maps/bien_dong_<level>_<code>`` (change)."""
        return self.maps_dir / (f"{level}_{code}" if kind == "current" else f"bien_dong_{level}_{code}")

    def product(self, stem: str, suffix: str) -> Path:
        """``<stem><suffix>`` at the top of the work directory (GeoPackage, project, GeoTIFF)."""
        return self.root / f"{stem}{suffix}"

    @property
    def transitions_csv(self) -> Path:
        return self.stats_dir / "transitions.csv"

    @property
    def areas_csv(self) -> Path:
        return self.stats_dir / "areas.csv"

    @property
    def summary_csv(self) -> Path:
        return self.stats_dir / "summary.csv"

    @property
    def holders_csv(self) -> Path:
        """How many users/managers hold land, by commune, land-use row and object (Biểu 02/TKKK)."""
        return self.stats_dir / "holders.csv"

    @property
    def owner_sources_csv(self) -> Path:
        """Parcel area by commune, land-use group and how its object was found."""
        return self.stats_dir / "owner_sources.csv"

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    def parcel_files(self) -> list[Path]:
        """The per-commune parcel files, sorted; an error if ingest has not run."""
        files = sorted(self.parcels_dir.glob("*.parquet"))
        if not files:
            raise StageInputMissing(
                f"No parcels in {self.parcels_dir}. Run 'kiemke ingest … --workdir {self.root}' first."
            )
        return files

    def khoanh_files(self) -> list[Path]:
        return sorted(self.khoanh_dir.glob("*.parquet"))

    @property
    def manifest_base(self) -> Path:
        """The record of the folder the manifest's paths were written relative to."""
        return self.cache_dir / "manifest_base.json"

    def read_manifest(self) -> RunManifest:
        """The run manifest ingest wrote, its files found from this folder, else
        from the one it was written in (a work folder copied alone); an error
        naming the fix when there is none."""
        try:
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StageInputMissing(
                f"{self.manifest} is missing. Run 'kiemke ingest … --workdir {self.root}' first."
            ) from None
        manifest, written_in = RunManifest.from_json(data, self.root), self._written_in()
        if all(p.exists() for p in manifest.named_files()) or written_in == self.root.absolute():
            return manifest
        there = RunManifest.from_json(data, written_in)
        return there if all(p.exists() for p in there.named_files()) else manifest

    def write_manifest(self, manifest: RunManifest) -> None:
        """Record the run manifest, its paths relative to this folder; rewritten
        only when what it says changes, not where it is: a project folder moved
        whole, or a work folder copied alone (its files where they were)."""
        written = self.manifest.read_text(encoding="utf-8") if self.manifest.exists() else None
        base = self._written_in()
        if written != json_text(manifest.to_json(base)):
            base = self.root.absolute()  # the paths from here: the manifest as it is (moved with them), or new
            if written != json_text(manifest.to_json(base)):
                write_json(self.manifest, manifest.to_json(base))
        write_json_if_changed(self.manifest_base, {"written_in": str(base)})

    def _written_in(self) -> Path:
        """The folder the manifest's paths are relative to: this one, unless it was copied from another."""
        return Path(read_json(self.manifest_base, {}).get("written_in") or self.root.absolute())


def in_run_regime(stage: Callable) -> Callable:
    """A stage core ``stage(work, …)`` run under the regime its work directory's
    manifest records (the active one before ingest has written it)."""
    @functools.wraps(stage)
    def run(work: WorkDir, *args: Any, **kwargs: Any) -> Any:
        regime = work.read_manifest().regime if work.manifest.exists() else active_regime()
        with use_regime(regime):
            return stage(work, *args, **kwargs)
    return run
