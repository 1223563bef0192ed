"""Current use as Cloud-Optimized GeoTIFFs with the colour palette, category
names and overviews (10 m for the province, 5 m for communes and districts)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.shutil import copy as rio_copy
from rasterio.transform import Affine, from_origin

from ..build import kiemke_build
from ..io import atomic_path, files_bounds, read_geoparquet, write_text
from ..reference import landuse_colors, landuse_tree
from ..regime import load_template
from ..symbology import MISSING_COLOUR

#: A band up to this many cells (64 MB) is staged in memory before the COG is
#: written (a tiled scratch file on disk cost 0.2 s of a small commune's
#: 0.25 s); a larger one, a province's, on disk, so as not to hold it twice.
IN_MEMORY_CELLS = 1 << 26

#: GDAL's threads for the province's overviews and compression: its GeoTIFF is
#: laid last, when a core is mostly idle (the 1 M province's in 0.9 s, not 1.2-1.6, on two cores).
LAYING_THREADS = "2"


def raster_codes() -> list[str]:
    """Raster values 1…n: the leaf land-use codes in code-tree order (0 = no data)."""
    tree = landuse_tree()
    return [c for c in tree.codes if tree.is_leaf(c)]


def landuse_values() -> dict[str, int]:
    """Each leaf land-use code's raster value."""
    return {c: i + 1 for i, c in enumerate(raster_codes())}


def grid(bounds, resolution: float) -> tuple[tuple[int, int], Affine]:
    """The grid of ``resolution`` covering ``bounds``, starting on a multiple of
    it (so that every unit's grid is a window of every other's): its shape and transform."""
    x0, y0, x1, y1 = bounds
    x0, y0 = np.floor(x0 / resolution) * resolution, np.floor(y0 / resolution) * resolution
    width, height = int(np.ceil((x1 - x0) / resolution)), int(np.ceil((y1 - y0) / resolution))
    return (height, width), from_origin(x0, y0 + height * resolution, resolution, resolution)


def empty_band(bounds, resolution: float) -> tuple[np.ndarray, Affine]:
    """A no-data band on the grid of ``resolution`` covering ``bounds``, and its transform."""
    shape, transform = grid(bounds, resolution)
    return np.zeros(shape, dtype="uint8"), transform


@dataclass(frozen=True)
class Coded:
    """Khoanh with a land-use code as rasterize reads them (built once, burnt
    into as many grids as needed): GeoJSON-like polygons, their raster values, their extent."""

    shapes: list[dict]
    values: np.ndarray
    bounds: tuple[float, float, float, float]

    @classmethod
    def of(cls, khoanh: gpd.GeoDataFrame) -> Coded | None:
        """The coded khoanh of a frame; None when none is coded."""
        coded = khoanh[khoanh["landuse"].notna()]
        if coded.empty:
            return None
        shapes, owner = geojson_polygons(coded.geometry.values)
        return cls(shapes, coded["landuse"].map(landuse_values()).to_numpy()[owner],
                   tuple(shapely.total_bounds(coded.geometry.values).tolist()))

    def burn(self, band: np.ndarray, transform: Affine) -> None:
        """Burn the khoanh into the band by land-use code (the code's raster
        value), within the cells around them only (GDAL's rasterize reads and
        writes back every row of the array it is given: the whole band, commune
        after commune, was minutes for a province). Cells they do not cover
        keep what neighbours burnt into them."""
        place(band, *self.window(transform, band.shape))

    def window(self, transform: Affine, shape: tuple[int, ...]) -> tuple[tuple[slice, slice], np.ndarray]:
        """The cells of the grid (``transform``, ``shape``) around the khoanh,
        and the khoanh burnt into them (0 where none is)."""
        x0, y0, x1, y1 = self.bounds
        (c0, r0), (c1, r1) = ~transform @ (x0, y1), ~transform @ (x1, y0)
        rows = slice(max(int(np.floor(r0)) - 1, 0), min(int(np.ceil(r1)) + 1, shape[0]))
        cols = slice(max(int(np.floor(c0)) - 1, 0), min(int(np.ceil(c1)) + 1, shape[1]))
        window = np.zeros((rows.stop - rows.start, cols.stop - cols.start), dtype="uint8")
        rasterize(zip(self.shapes, self.values, strict=True), out=window,
                  transform=transform @ Affine.translation(cols.start, rows.start))
        return (rows, cols), window


def place(band: np.ndarray, cells: tuple[slice, slice], window: np.ndarray) -> None:
    """Copy a burnt window into the band where it burnt something."""
    np.copyto(band[cells], window, where=window != 0)


def lay(shape: tuple[int, int], pieces: Iterable[tuple[tuple[slice, slice], np.ndarray]]) -> np.ndarray:
    """A band laid from burnt windows, in their order, each where it burnt something."""
    band = np.zeros(shape, dtype="uint8")
    for cells, window in pieces:
        place(band, cells, window)
    return band


def write_band(path: Path, band: np.ndarray, transform: Affine, resolution: float, crs) -> dict[str, float]:
    """A land-use band as a paletted Cloud-Optimized GeoTIFF with category
    names; the area (m²) of each code counted in it."""
    height, width = band.shape
    codes = raster_codes()
    value = landuse_values()
    colours = landuse_colors()["hex"]
    colormap = {0: (255, 255, 255, 0)}
    for code, v in value.items():
        h = str(colours.get(code, MISSING_COLOUR)).lstrip("#")
        colormap[v] = (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255)
    tree = landuse_tree()
    profile = {"width": width, "height": height, "count": 1, "dtype": "uint8", "crs": crs, "transform": transform,
               "nodata": 0}
    with contextlib.ExitStack() as stack:  # staged, then written once by the COG driver
        if band.size <= IN_MEMORY_CELLS:
            dst = stack.enter_context(stack.enter_context(rasterio.MemoryFile()).open(driver="MEM", **profile))
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            dst = stack.enter_context(rasterio.open(folder / "plain.tif", "w", driver="GTiff", tiled=True,
                                                    blockxsize=512, blockysize=512, **profile))
        dst.write_colormap(1, colormap)
        dst.write(band, 1)
        dst.update_tags(1, **{f"CODE_{v}": f"{c} - {tree.name(c)}" for c, v in value.items()})
        counts = cell_counts(band)
        areas = {c: float(counts[v]) * resolution**2 for c, v in value.items() if counts[v]}
        dst.update_tags(landuse_codes=",".join(codes), source="kiemke khoanh đất", resolution_m=str(resolution),
                        **{AREAS_TAG: json.dumps(areas)})
        dst.set_band_description(1, f"Mã loại đất hiện trạng ({load_template().regime['name']})")
        dst.build_overviews([2, 4, 8, 16], Resampling.nearest)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            # DEFLATE, which every GIS reads, at its fastest level: the 1 M province's 13 118 × 12 616 cells in
            # 0.67 s, not 1.65 s, for 14 MB, not 10 (ZSTD, faster still, is not read by older ArcGIS and MapInfo)
            rio_copy(dst, tmp, driver="COG", compress="DEFLATE", level=1, overview_resampling="NEAREST",
                     resampling="NEAREST", blocksize=512)
    # category names, read by GDAL/QGIS from the PAM side-car
    names = ["Không có dữ liệu", *[f"{c} - {tree.name(c)}" for c in codes]]
    write_text(path.with_name(path.name + ".aux.xml"),
               '<PAMDataset><PAMRasterBand band="1"><CategoryNames>'
               + "".join(f"<Category>{escape(n)}</Category>" for n in names)
               + "</CategoryNames></PAMRasterBand></PAMDataset>\n")
    return areas


#: The GeoTIFF tag holding the area (m²) of each code its cells give, so that
#: a GeoTIFF kept from an earlier run is not read cell by cell again.
AREAS_TAG = "landuse_area_m2"


def geojson_polygons(geoms: np.ndarray) -> tuple[list[dict], np.ndarray]:
    """Every polygon part as a GeoJSON-like Polygon whose rings are lists of
    coordinate pairs, and the geometry each part comes from: what ``rasterize``
    reads, built from shapely's arrays (its ``__geo_interface__`` walks every
    coordinate in Python: 7 s for 64 000 khoanh, here 0.3 s). Lists, not
    arrays: rasterize reads a Python float faster than a NumPy row's item (a
    commune's two burns 11 ms, not 30)."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    rings, part_of = shapely.get_rings(parts, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    pairs = coords.tolist()
    ring_ends = np.r_[0, np.flatnonzero(np.diff(ring_of)) + 1, len(coords)].tolist() if len(coords) else [0]
    ring_coords = [pairs[a:b] for a, b in zip(ring_ends[:-1], ring_ends[1:], strict=True)]
    first_ring = np.r_[0, np.flatnonzero(np.diff(part_of)) + 1, len(rings)] if len(rings) else np.zeros(1, int)
    shapes = [{"type": "Polygon", "coordinates": ring_coords[a:b]} for a, b in zip(first_ring[:-1], first_ring[1:],
                                                                                   strict=True)]
    return shapes, owner[part_of[first_ring[:-1]]]


def commune_rasters(khoanh_file: str, path: str | None, resolution: float, crs, province: Affine,
                    province_shape: tuple[int, int], cells_file: str | None) -> dict[str, float] | None:
    """Task: a commune's GeoTIFF (none when ``path`` is None: it is up to date)
    and the area of each code in it; its khoanh burnt into the province's grid,
    the cells they cover and where they go saved to ``cells_file`` (none when
    None: they are up to date): the khoanh read once for both. Runs on a worker."""
    coded = Coded.of(read_geoparquet(Path(khoanh_file), columns=["landuse", "geometry"]))
    areas = None
    if path is not None:
        band, transform = empty_band(files_bounds([khoanh_file]), resolution)
        if coded is not None:
            coded.burn(band, transform)
        areas = write_band(Path(path), band, transform, resolution, crs)
    if cells_file is not None:
        cells, window = coded.window(province, province_shape) if coded is not None else (
            (slice(0, 0), slice(0, 0)), np.zeros((0, 0), dtype="uint8"))
        save_cells(Path(cells_file), cells, window)
    return areas


def save_cells(path: Path, cells: tuple[slice, slice], window: np.ndarray) -> None:
    """A commune's burnt window of the province's grid and where it goes (``.npz``)."""
    rows, cols = cells
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        np.savez(out, window=window, cells=np.array([rows.start, rows.stop, cols.start, cols.stop]))


def load_cells(path: Path) -> tuple[tuple[slice, slice], np.ndarray]:
    """What :func:`save_cells` saved."""
    with np.load(path) as saved:
        r0, r1, c0, c1 = saved["cells"].tolist()
        return (slice(r0, r1), slice(c0, c1)), saved["window"]


def grid_key(shape: tuple[int, int], transform: Affine) -> str:
    """A name for a grid (and this build of kiemke, whose raster values the
    cells hold): the communes' cells burnt into one are kept under it."""
    return hashlib.sha1(repr((tuple(transform[:6]), tuple(shape), kiemke_build())).encode()).hexdigest()[:16]


def laid_to_file(cells_files: list[str], shape: tuple[int, int], transform: Affine, path: str, resolution: float,
                 crs) -> dict[str, float]:
    """Task: a unit's GeoTIFF laid from the cells its communes burnt into its
    grid (:func:`save_cells` files, in the communes' order, each where it burnt
    something); the area of each code in it (m²). Runs on a worker."""
    band = lay(shape, (load_cells(Path(f)) for f in cells_files))
    with rasterio.Env(GDAL_NUM_THREADS=LAYING_THREADS):  # after every commune; only districts run beside
        return write_band(Path(path), band, transform, resolution, crs)


def mosaic_to_file(commune_tifs: list[str], path: str, resolution: float, crs) -> dict[str, float]:
    """Task: a district's GeoTIFF laid from its communes' GeoTIFFs, in their order,
    each where it burnt something; the area of each code in it (m²). The cells
    are those burning the district's khoanh would give: a commune's grid is the
    district's, shifted by whole cells (both start on a multiple of the cell
    size), and the district's extent is its communes' together."""
    rasters = []
    for name in commune_tifs:
        with rasterio.open(name) as src:
            rasters.append((src.bounds, src.read(1)))
    lefts, bottoms, rights, tops = np.array([tuple(bounds) for bounds, _ in rasters]).T
    shape, transform = grid((lefts.min(), bottoms.min(), rights.max(), tops.max()), resolution)
    offsets = [[round(v) for v in ~transform @ (left, top)] for (left, _, _, top), _ in rasters]
    band = lay(shape, (((slice(row, row + cells.shape[0]), slice(col, col + cells.shape[1])), cells)
                       for (col, row), (_, cells) in zip(offsets, rasters, strict=True)))
    return write_band(Path(path), band, transform, resolution, crs)


def raster_area_by_code(path: Path) -> dict[str, float]:
    """Area (m²) of each land-use code counted in a kiemke GeoTIFF (as its
    tag records them, else counted in its cells)."""
    with rasterio.open(path) as src:
        tags = src.tags()
        if AREAS_TAG in tags:
            return json.loads(tags[AREAS_TAG])
        band = src.read(1)
        codes = tags["landuse_codes"].split(",")
        cell = abs(src.res[0] * src.res[1])
    counts = cell_counts(band)
    return {c: float(counts[i + 1]) * cell for i, c in enumerate(codes) if counts[i + 1]}


def cell_counts(band: np.ndarray) -> np.ndarray:
    """How many cells hold each value 0…255: the band's cells counted two at a
    time (each pair of bytes one 16-bit value, its two cells the value's two
    bytes), a million pairs at a time. A bincount casts its input to int64
    first (3.4 s for 48 M cells in one piece, not 0.1); in pairs, half the
    casting: the 1 M province's 165 M cells in 0.21 s, not 0.35."""
    cells = np.ascontiguousarray(band).ravel()
    paired, step = len(cells) & ~1, 1 << 20
    pairs = cells[:paired].view(np.uint16)
    by_pair = sum((np.bincount(pairs[k:k + step], minlength=1 << 16) for k in range(0, len(pairs), step)),
                  np.zeros(1 << 16, dtype=np.int64)).reshape(256, 256)  # [one byte, the other]
    counts = by_pair.sum(axis=0) + by_pair.sum(axis=1)
    if paired < len(cells):
        counts[cells[-1]] += 1
    return counts
