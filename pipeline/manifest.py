"""The run manifest: what the stages after ingest need from the run's
settings, as ingest records it in ``<workdir>/inventory.json`` (its files'
paths relative to the work directory, so that a project folder moved or copied
whole keeps it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from pyproj import CRS

from . import crs as vn
from .boundaries import load_boundaries
from .config import Boundaries, CommuneName, CompoundSplit, NewUnits, Previous, Settings
from .paths import located, shown_path, spelled, spelled_fields
from .reference import Province, province as find_province
from .regime import DEFAULT_TEMPLATE
from .topology import Thresholds
from .vntext import strip_diacritics


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

    def to_json(self, base: Path | None) -> dict[str, Any]:
        """The manifest as its file holds it, the paths relative to ``base`` (the work directory; None: absolute)."""
        return {
            "province": self.province.name_vi,
            "province_code": self.province.gso_code,
            "central_meridian_deg": self.meridian,
            "year": self.year,
            "reference_date": self.reference_date.isoformat(),
            "boundaries": spelled_fields(self.boundaries, base),
            "qa": asdict(self.qa),
            "natural_area_ha": dict(self.natural_area_ha),
            "maps": {"scale_step": self.map_scale_step, "dpi": self.map_dpi},
            "previous": spelled_fields(self.previous, base),
            "columns": {k: list(v) for k, v in self.column_aliases.items()},
            "compound": {"first_use_m2": self.compound.first_use_m2,
                         "area_fields": {k: list(v) for k, v in self.compound.area_fields.items()}},
            "input_root": spelled(self.input_root, base) if self.input_root else None,
            "units": [spelled_fields(u, base) for u in self.units],
            "levels": list(self.levels),
            "regime": self.regime,
            "communes": [asdict(c) for c in self.communes],
        }

    def named_files(self) -> list[Path]:
        """The files and folders the manifest names (a pattern's folder)."""
        spec, previous = self.boundaries, self.previous
        named = [spec.path, spec.context] if spec else []
        named += [Path(previous.path).parent, previous.statistics] if previous else []
        named += [p for u in self.units for p in (u.path, u.codes)]
        return [p for p in [*named, self.input_root] if p is not None]

    @classmethod
    def from_json(cls, data: Mapping[str, Any], base: Path) -> RunManifest:
        """The manifest :meth:`to_json` gave, its paths relative to ``base``."""
        def path(text: str | None) -> Path | None:
            return located(text, base) if text else None

        previous = data.get("previous")
        boundaries = data.get("boundaries")
        compound = data.get("compound") or {}
        maps = data.get("maps") or {}
        return cls(
            province=find_province(data["province_code"]),
            year=int(data["year"]),
            reference_date=date.fromisoformat(data["reference_date"]),
            boundaries=Boundaries(**{**boundaries, "path": path(boundaries["path"]),
                                     "context": path(boundaries.get("context"))}) if boundaries else None,
            qa=Thresholds(**data.get("qa", {})),
            natural_area_ha=dict(data.get("natural_area_ha", {})),
            map_scale_step=int(maps.get("scale_step", 0)),
            map_dpi=int(maps.get("dpi", 150)),
            previous=Previous(**{**previous, "path": str(path(previous["path"])),
                                 "statistics": path(previous.get("statistics"))}) if previous else None,
            column_aliases={k: tuple(v) for k, v in (data.get("columns") or {}).items()},
            compound=CompoundSplit(first_use_m2=float(compound.get("first_use_m2", 400.0)),
                                   area_fields={k: tuple(v) for k, v in compound.get("area_fields", {}).items()}),
            input_root=path(data.get("input_root")),
            units=tuple(NewUnits(**{**u, "path": path(u["path"]), "codes": path(u.get("codes")),
                                    "levels": tuple(u["levels"])}) for u in data.get("units", [])),
            levels=tuple(data.get("levels", ("xa", "huyen", "tinh"))),
            regime=str(data.get("regime", DEFAULT_TEMPLATE)),
            communes=tuple(CommuneName(**c) for c in data.get("communes", [])),
        )


@cache
def _boundaries(spec: Boundaries | None, meridian: float) -> gpd.GeoDataFrame:
    return load_boundaries(spec, meridian)
