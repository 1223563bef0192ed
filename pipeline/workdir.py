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
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from pyproj import CRS

from . import __version__, crs as vn
from .boundaries import load_boundaries
from .config import Boundaries, CommuneName, CompoundSplit, NewUnits, Previous, Settings, load_settings
from .errors import StageInputMissing
from .io import read_geoparquets
from .reference import Province, province as find_province
from .regime import DEFAULT_TEMPLATE, active_regime, use_regime
from .topology import Thresholds
from .vntext import strip_diacritics

MANIFEST = "inventory.json"
GENERALISED_FORM = "simplified"  # what the kept generalised khoanh are, within a version: change it when that changes


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


def shown_path(path: str, input_root: Path | None) -> str:
    """A raw file's path (``file.gpkg!layer`` too) under ``input_root`` when it is there."""
    if input_root is None:
        return path
    root = input_root.resolve().as_posix().rstrip("/") + "/"
    full = Path(path.split("!")[0]).resolve().as_posix() + ("!" + path.split("!", 1)[1] if "!" in path else "")
    return full.removeprefix(root)


@dataclass(frozen=True)
class RunManifest:
    """What the stages after ingest need from the run's settings, as ingest
    recorded them in ``<workdir>/inventory.json``."""

    province: Province
    year: int
    reference_date: date
    boundaries: Boundaries | None = None
    qa: Thresholds = Thresholds()
    natural_area_ha: Mapping[str, float] = field(default_factory=dict)
    map_scale_step: int = 0
    map_dpi: int = 150
    previous: Previous | None = None
    column_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    compound: CompoundSplit = CompoundSplit()
    input_root: Path | None = None  # the raw-data folder of the run (paths in reports are shown under it)
    units: tuple[NewUnits, ...] = ()  # new administrative units the run is regrouped onto
    levels: tuple[str, ...] = ("xa", "huyen", "tinh")  # the levels of the forms and maps
    regime: str = DEFAULT_TEMPLATE  # the circular the run follows (its codes, forms and map texts)
    communes: tuple[CommuneName, ...] = ()  # names (and districts) the config gives

    @classmethod
    def from_settings(cls, settings: Settings) -> RunManifest:
        return cls(
            province=settings.province, year=settings.year, reference_date=settings.reference_date,
            boundaries=settings.boundaries, qa=settings.qa, natural_area_ha=dict(settings.natural_area_ha),
            map_scale_step=settings.map_scale_step, map_dpi=settings.map_dpi, previous=settings.previous,
            column_aliases=dict(settings.column_aliases), compound=settings.compound, input_root=settings.input_root,
            units=settings.units, regime=settings.regime, levels=settings.levels, communes=settings.communes)

    # ------------------------------------------------------------ derived

    @property
    def meridian(self) -> float:
        """The province's VN-2000 TM-3 central meridian, degrees."""
        return self.province.central_meridian_deg

    @property
    def crs(self) -> CRS:
        """The inventory CRS: VN-2000 / TM-3 on the province's meridian."""
        return vn.tm3_crs(self.meridian)

    @property
    def product_stem(self) -> str:
        """``Lạng Sơn``, 2019 → ``LangSon_2019_HTSDD``: the name of the GeoPackage, project and GeoTIFF."""
        name = strip_diacritics(self.province.name_vi).title().replace(" ", "").replace(".", "")
        return f"{name}_{self.year}_HTSDD"

    def load_boundaries(self) -> gpd.GeoDataFrame:
        """The commune boundaries of the run in the inventory CRS (empty when none)."""
        return _boundaries(self.boundaries, self.meridian).copy()

    def load_context(self) -> gpd.GeoDataFrame:
        """The wider boundaries the maps name the neighbours from (the run's own when none)."""
        if self.boundaries is None or self.boundaries.context is None:
            return self.load_boundaries()
        return _boundaries(replace(self.boundaries, path=self.boundaries.context, context=None), self.meridian).copy()

    def unit_attributes(self) -> pd.DataFrame:
        """Each commune's code, name, district code and district name: the
        boundary file's, then what ``[[communes]]`` gives (over the file's)."""
        columns = ["commune_code", "commune_name", "district_code", "district_name"]
        bounds = _boundaries(self.boundaries, self.meridian)
        known = pd.DataFrame({c: bounds[c] if c in bounds else pd.Series(dtype=object) for c in columns})
        known = known.astype({"commune_code": str})
        given = pd.DataFrame([(c.code, c.name, c.district_code, c.district) for c in self.communes], columns=columns)
        if given.empty:
            return known.reset_index(drop=True)
        return given.set_index("commune_code").combine_first(known.set_index("commune_code")).reset_index()[columns]

    def commune_names(self) -> dict[str, str]:
        """Commune code → name, from the boundary file and ``[[communes]]`` (empty when neither gives one)."""
        named = self.unit_attributes().dropna(subset=["commune_name"])
        return dict(zip(named["commune_code"].astype(str), named["commune_name"].astype(str), strict=True))

    def shown(self, path: str) -> str:
        """A raw file's path as an officer reads it: under the raw-data folder when it is there."""
        return shown_path(path, self.input_root)

    def with_boundaries(self, path: Path | None) -> RunManifest:
        """The same manifest with another boundary file (``--boundaries`` of a stage)."""
        if path is None:
            return self
        fields = asdict(self.boundaries) if self.boundaries else {}
        return replace(self, boundaries=Boundaries(**{**fields, "path": Path(path)}))

    def ingest_settings(self, workdir: Path) -> Settings:
        """Settings that read a file the way this run's ingest did (the change
        stage reads the previous inventory's layer with them)."""
        return Settings(province=self.province, year=self.year, reference_date=self.reference_date,
                        workdir=workdir, column_aliases=dict(self.column_aliases), compound=self.compound,
                        qa=self.qa, regime=self.regime)

    # ------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        def plain(obj: Any) -> Any:
            return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(obj).items()} if obj else None

        return {
            "province": self.province.name_vi,
            "province_code": self.province.gso_code,
            "central_meridian_deg": self.meridian,
            "year": self.year,
            "reference_date": self.reference_date.isoformat(),
            "boundaries": plain(self.boundaries),
            "qa": asdict(self.qa),
            "natural_area_ha": dict(self.natural_area_ha),
            "maps": {"scale_step": self.map_scale_step, "dpi": self.map_dpi},
            "previous": plain(self.previous),
            "columns": {k: list(v) for k, v in self.column_aliases.items()},
            "compound": {"first_use_m2": self.compound.first_use_m2,
                         "area_fields": {k: list(v) for k, v in self.compound.area_fields.items()}},
            "input_root": str(self.input_root) if self.input_root else None,
            "units": [plain(u) for u in self.units],
            "levels": list(self.levels),
            "regime": self.regime,
            "communes": [asdict(c) for c in self.communes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunManifest:
        previous = data.get("previous")
        boundaries = data.get("boundaries")
        compound = data.get("compound") or {}
        maps = data.get("maps") or {}
        return cls(
            province=find_province(data["province_code"]),
            year=int(data["year"]),
            reference_date=date.fromisoformat(data["reference_date"]),
            boundaries=Boundaries(**{**boundaries, "path": Path(boundaries["path"]),
                                     "context": Path(boundaries["context"]) if boundaries.get("context") else None})
            if boundaries else None,
            qa=Thresholds(**data.get("qa", {})),
            natural_area_ha=dict(data.get("natural_area_ha", {})),
            map_scale_step=int(maps.get("scale_step", 0)),
            map_dpi=int(maps.get("dpi", 150)),
            previous=Previous(**{**previous, "statistics": Path(previous["statistics"])
                                 if previous.get("statistics") else None}) if previous else None,
            column_aliases={k: tuple(v) for k, v in (data.get("columns") or {}).items()},
            compound=CompoundSplit(first_use_m2=float(compound.get("first_use_m2", 400.0)),
                                   area_fields={k: tuple(v) for k, v in compound.get("area_fields", {}).items()}),
            input_root=Path(data["input_root"]) if data.get("input_root") else None,
            units=tuple(NewUnits(**{**u, "path": Path(u["path"]), "codes": Path(u["codes"]) if u.get("codes") else None,
                                    "levels": tuple(u["levels"])}) for u in data.get("units", [])),
            levels=tuple(data.get("levels", ("xa", "huyen", "tinh"))),
            regime=str(data.get("regime", DEFAULT_TEMPLATE)),
            communes=tuple(CommuneName(**c) for c in data.get("communes", [])),
        )


@cache
def _boundaries(spec: Boundaries | None, meridian: float) -> gpd.GeoDataFrame:
    return load_boundaries(spec, meridian)


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
        """This version's figures of each commune (``cache/figures/<version>/``)."""
        return self.cache_dir / "figures" / __version__

    def figures(self, source: str, name: str) -> Path:
        """The stem of a commune's figures kept by the aggregate stage, summed
        from its file ``name`` of ``source`` (``khoanh`` or, before that stage, ``parcels``)."""
        return self.figures_dir / source / name

    @property
    def province_cells_dir(self) -> Path:
        """The communes' khoanh burnt into the province's grid, one folder a grid
        (and a version of kiemke: its raster values)."""
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
        """This version's generalised khoanh (``cache/generalised/<version>.<form>/``)."""
        return self.cache_dir / "generalised" / f"{__version__}.{GENERALISED_FORM}"

    def generalised(self, commune_code: str, scale: int) -> Path:
        """A commune's khoanh as a sheet at 1:``scale`` draws them (kept until
        its khoanh or kiemke's version change)."""
        return self.generalised_dir / str(scale) / f"{commune_code}.parquet"

    @property
    def linework_dir(self) -> Path:
        """This version's boundary lines of the district and province sheets (``cache/linework/<version>/``)."""
        return self.cache_dir / "linework" / __version__

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

    def read_manifest(self) -> RunManifest:
        """The run manifest ingest wrote; an error naming the fix when there is none."""
        try:
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StageInputMissing(
                f"{self.manifest} is missing. Run 'kiemke ingest … --workdir {self.root}' first."
            ) from None
        return RunManifest.from_json(data)


def in_run_regime(stage: Callable) -> Callable:
    """A stage core ``stage(work, …)`` run under the regime its work directory's
    manifest records (the active one before ingest has written it)."""
    @functools.wraps(stage)
    def run(work: WorkDir, *args: Any, **kwargs: Any) -> Any:
        regime = work.read_manifest().regime if work.manifest.exists() else active_regime()
        with use_regime(regime):
            return stage(work, *args, **kwargs)
    return run
