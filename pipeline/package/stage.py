"""The package stage: one GeoPackage that opens styled in QGIS, a QGIS project
next to it (``.qgz``), and Cloud-Optimized GeoTIFFs of current use."""

from __future__ import annotations

import contextvars
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from ..ingest.corrections import review_books
from ..io import files_bounds, forget_versions_beside, read_columns, read_json, up_to_date, write_text
from ..parallel import call, executor
from ..records import commune_set, digests_record, given_boundaries, remove_unlisted, rewriting, tell_kept, unit_inputs
from ..regime import load_template
from ..units import UNNAMED_PREFIX, run_units
from ..workdir import RunManifest, WorkDir, in_run_regime
from .ahead import copy_ahead
from .geopackage import write_geopackage
from .gpkg import collect_layers
from .project import write_project
from .raster import commune_rasters, grid, grid_key, laid_to_file, mosaic_to_file, raster_area_by_code
from .styles import write_style_files

log = logging.getLogger(__name__)

#: A GeoTIFF of a commune or district kiemke writes under ``rasters/`` (with GDAL's statistics beside):
#: its code is a number, or a commune's named after its file.
RASTER_NAME = re.compile(rf"(xa|huyen)_(\d+|{UNNAMED_PREFIX}.+)\.tif(\.aux\.xml)?")


@in_run_regime
def run_package(work: WorkDir, *, commune_resolution: float = 5.0, province_resolution: float = 10.0,
                styles_dir: Path | None = None, progress: bool = True,
                scheduler: str | None = "sync") -> dict[str, Path]:
    """GeoPackage with styles, QGIS project and GeoTIFFs into the work directory
    (the GeoTIFFs in parallel, one per unit, while this process writes the
    GeoPackage; none for the unknown district of the communes without
    boundary, which the province's covers)."""
    manifest = work.read_manifest()
    stem = manifest.product_stem
    products = {"gpkg": work.product(stem, ".gpkg"), "project": work.product(stem, ".qgz"),
                "tif": work.product(stem, ".tif")}
    inputs = [*work.parcel_files(), *work.quarantine_dir.glob("*.parquet"), *work.khoanh_files(),
              *work.qa_dir.glob("*/*.parquet"), work.commune_overlaps,
              *work.change_dir.glob("*.parquet"), work.areas_csv, work.manifest, commune_set(work),
              given_boundaries(work, manifest),
              *[WorkDir(work.root / f"units_{u.label}").manifest for u in manifest.units],
              *review_books(work)]  # the officer's notes
    if up_to_date(list(products.values()), inputs) and all(path.exists() for path in
                                                        written_beside(work, styles_dir or work.styles_dir)):
        return products
    with ThreadPoolExecutor(1) as background:  # the GeoPackage in this process while the workers burn rasters
        written = background.submit(contextvars.copy_context().run,  # under the run's regime
                                    write_package_files, work, manifest, products, styles_dir)
        raster_areas = write_rasters(work, manifest, products["tif"], commune_resolution, province_resolution,
                                     progress, scheduler)
        written.result()
    pd.DataFrame([{"unit": k, "landuse": c, "area_m2": a} for k, v in raster_areas.items() for c, a in v.items()]) \
        .pipe(lambda f: write_text(work.report("raster_areas.csv"), f.to_csv(index=False)))
    log.info("package: %s, %s, %s", products["gpkg"], products["project"], products["tif"])
    return products


def copy_geopackage_ahead(work: WorkDir) -> bool:
    """After the ingest of a re-run: when the GeoPackage written before will be
    patched (its ledger kept, a commune's parcels newer than it), start copying
    it in the background (:mod:`.ahead`); whether it was started."""
    if not work.manifest.exists():
        return False
    gpkg = work.product(work.read_manifest().product_stem, ".gpkg")
    if not (gpkg.exists() and work.gpkg_ledger(gpkg.name).exists()):
        return False
    made = gpkg.stat().st_mtime_ns
    if not any(path.stat().st_mtime_ns > made for path in [*work.parcel_files(),
                                                          *work.quarantine_dir.glob("*.parquet")]):
        return False
    copy_ahead(gpkg)
    return True


def written_beside(work: WorkDir, styles: Path) -> list[Path]:
    """What the stage's last run wrote beside its three products: ``reports/raster_areas.csv``,
    the GeoTIFF of each commune and district it lists, the style files recorded for ``styles``
    (one an officer deleted is made again)."""
    areas = work.report("raster_areas.csv")
    units = pd.read_csv(areas, dtype=str)["unit"].unique() if areas.exists() else []
    return [areas, *(work.unit_raster(*key.split("/")) for key in units if key != "tinh"),
            *(styles / name for name in read_json(digests_record(work, styles), {}))]


def write_package_files(work: WorkDir, manifest: RunManifest, products: dict[str, Path],
                        styles_dir: Path | None) -> None:
    """The GeoPackage, its styles as QML/SLD files and the QGIS project."""
    crs = manifest.crs
    gpkg = products["gpkg"]
    layers = write_geopackage(gpkg, collect_layers(work, manifest), crs, ledger=work.gpkg_ledger(gpkg.name),
                              context=crs.to_wkt(), record=work.written_record(gpkg.name))
    styles, folder = [layer.style for layer in layers if layer.style is not None], styles_dir or work.styles_dir
    with rewriting(digests_record(work, folder),
                   [folder / f"{s.layer}{ext}" for s in styles for ext in (".qml", ".sld")]) as kept:
        tell_kept(kept, "style file")
        write_style_files(folder, styles)
    template = load_template()
    project = products["project"]
    with rewriting(work.written_record(project.name), [project]) as kept:
        tell_kept(kept, "QGIS project")
        write_project(project, gpkg, layers, crs,
                      f"Hiện trạng sử dụng đất năm {manifest.year} — "
                      f"{manifest.province.title(manifest.reference_date)}",
                      template.maps["title"].format(year=manifest.year),
                      template.maps["crs_note"].format(
                          meridian=manifest.province.central_meridian_dms.replace("'", "′")))


def current_province_cells(work: WorkDir, communes: list[str], grid: str) -> set[str]:
    """The communes whose khoanh burnt into the province's grid ``grid`` are
    kept from an earlier run and current (newer than their khoanh and the run
    manifest); the cells of other grids are forgotten."""
    forget_versions_beside(work.province_cells_dir / grid)
    return {code for code in communes
            if up_to_date([work.province_cells(code, grid)], [work.khoanh(code), work.manifest])}


def write_rasters(work: WorkDir, manifest: RunManifest, province_tif: Path, commune_resolution: float,
                  province_resolution: float, progress: bool, scheduler) -> dict[str, dict[str, float]]:
    """The GeoTIFFs of the province, its districts and communes; the area (m²)
    of each code in each, by unit. All on the workers: each commune's khoanh
    are read once, burnt into its own GeoTIFF and into the province's grid
    (each unless up to date; the cells kept under ``cache/province_cells/``),
    the province's GeoTIFF is laid from those cells, a district's from its
    communes' GeoTIFFs."""
    crs = manifest.crs
    communes = sorted(read_columns(work.khoanh_files(), ["commune_code"])["commune_code"].unique())
    units = run_units(manifest, communes)
    drawn = [unit for unit in units if unit.level in ("xa", "huyen") and not unit.unknown_district]
    tif = {unit.key: work.unit_raster(unit.level, unit.code) for unit in drawn}
    listed = [*tif.values(), *(path.with_suffix(".tif.aux.xml") for path in tif.values())]
    remove_unlisted((path for path in work.rasters_dir.glob("*.tif*") if RASTER_NAME.fullmatch(path.name)),
                    listed)  # those of units the run no longer has; an officer's own GeoTIFF stays
    areas = {unit.key: raster_area_by_code(tif[unit.key]) for unit in drawn
             if up_to_date([tif[unit.key]], [*unit_inputs(work, unit), work.manifest])}
    districts = [unit for unit in drawn if unit.level == "huyen" and unit.key not in areas]
    province_shape, province_transform = grid(files_bounds([work.khoanh(c) for c in communes]),
                                              province_resolution)
    key = grid_key(province_shape, province_transform)
    cells = {c: str(work.province_cells(c, key)) for c in communes}
    kept = current_province_cells(work, communes, key)
    stale = [c for c in communes if f"xa/{c}" not in areas or c not in kept]
    with executor(scheduler, shared=work.root) as pmap:
        made = pmap(commune_rasters, [(str(work.khoanh(c)), None if f"xa/{c}" in areas else str(tif[f"xa/{c}"]),
                                       commune_resolution, crs, province_transform, province_shape,
                                       None if c in kept else cells[c]) for c in stale], "GeoTIFF" if progress else "")
        areas |= {f"xa/{c}": a for c, a in zip(stale, made, strict=True) if a is not None}
        laid = pmap(call, [(laid_to_file, list(cells.values()), province_shape, province_transform, str(province_tif),
                            province_resolution, crs)]
                    + [(mosaic_to_file, [str(tif[f"xa/{c}"]) for c in d.communes], str(tif[d.key]),
                        commune_resolution, crs) for d in districts], "")
    areas |= dict(zip(["tinh", *(d.key for d in districts)], laid, strict=True))
    return {"tinh": areas["tinh"], **{key: areas[key] for key in tif}}  # in the units' order
