"""The bundled sample: synthetic cadastral parcels inside real Lạng Sơn communes.

Deterministic: the same seed gives the same parcels. Parcels tile each commune
(Voronoi cells of a density-weighted point set, cut by roads and a river) and
get land uses from a synthetic terrain shaped like the province: forest on the
hills, karst tops, paddy in the valleys, houses and gardens along the roads.
Each commune is written in a form officers really hold, with FAMIS/ViLIS
column names (SHBANDO, SHTHUA, DIENTICH, KHLOAIDAT, TENCHU, DOITUONG …).

Commune boundaries: censusVN2009 (MIT, © 2017 Marc Choisy), see
``pipeline/data/README.md``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from .. import crs as vn
from ..reference import province as find_province
from .defects import plant_problems

log = logging.getLogger(__name__)

PROVINCE = find_province("Lạng Sơn")
DISTRICT_CODE = "184"  # Huyện Văn Quan
DISTRICT_FOLDER = "van_quan"


@dataclass(frozen=True)
class SampleCommune:
    """One sample commune and the raw form its parcels are written in."""

    code: str
    folder: str
    form: str  # "shp_prj", "shp_noprj", "shp_utm48", "geojson_wgs84", "web_export"
    parcels: int
    urban: bool = False
    plant_problems: bool = False  # QA problems planted on purpose (sample_defects.py)

    @property
    def stem(self) -> str:
        return f"TD_{self.code}"


SAMPLE_COMMUNES: tuple[SampleCommune, ...] = (
    SampleCommune("06253", "tt_van_quan", "shp_prj", 5600, urban=True, plant_problems=True),
    SampleCommune("06286", "khanh_khe", "shp_noprj", 5200),
    SampleCommune("06274", "hoa_binh", "shp_utm48", 5600),
    SampleCommune("06307", "tan_doan", "geojson_wgs84", 5600),
    SampleCommune("06319", "yen_phuc", "web_export", 3500),
)

FORM_DESCRIPTIONS = {
    "shp_prj": "ESRI Shapefile, VN-2000 / TM-3 107°15′ (EPSG:9215) with its .prj, UTF-8 (.cpg)",
    "shp_noprj": "ESRI Shapefile, VN-2000 / TM-3 107°15′ with NO .prj (CRS given in inventory.toml)",
    "shp_utm48": "ESRI Shapefile, VN-2000 / UTM zone 48N (EPSG:3405), as in topographic-map work",
    "geojson_wgs84": "GeoJSON, WGS 84 longitude/latitude (as exported from a web map)",
    "web_export": "GeoJSON, WGS 84, as a VBDLIS / web-map export: camelCase columns, cadastral codes (RSX, RPH, "
                  "HNK, some LUA, LNK), owner names but no user/manager object and no commune code, a few land uses "
                  "written as names, a few areas turned into spreadsheet dates",
}

FAMILY_NAMES = ("Hoàng", "Nông", "Lương", "Vi", "Lăng", "Hà", "Lộc", "Chu", "Triệu", "Mã",
                "Nguyễn", "Lý", "Đinh", "Hứa", "Lâm", "Dương")
MIDDLE_NAMES = ("Văn", "Thị", "Đức", "Thị", "Văn", "Minh")
GIVEN_NAMES = ("Tâm", "Thái", "Hùng", "Lan", "Hoa", "Sơn", "Bình", "Cường", "Dũng", "Hạnh",
               "Khánh", "Liên", "Mai", "Nam", "Phúc", "Quý", "Thắng", "Tuấn", "Xuân", "Yến")


# ---------------------------------------------------------------- boundaries


def commune_boundaries() -> gpd.GeoDataFrame:
    """Lạng Sơn's 226 commune boundaries of 2019 (WGS 84)."""
    ref = resources.files("pipeline") / "data" / "langson_communes_2009.geojson"
    with resources.as_file(ref) as path:
        return pyogrio.read_dataframe(path)


def _commune_polygon(boundaries: gpd.GeoDataFrame, code: str) -> shapely.Geometry:
    row = boundaries.loc[boundaries["gso_commune_code"] == code]
    geom = shapely.make_valid(row.geometry.iloc[0])
    projected = vn.reproject(np.array([geom]), CRS.from_epsg(4326), PROVINCE.central_meridian_deg)[0]
    return shapely.set_precision(projected, GRID)


# ------------------------------------------------------------------- terrain


@dataclass(frozen=True)
class Terrain:
    """A smooth synthetic relief over a commune (0 = valley floor, 1 = summit)."""

    centers: np.ndarray
    widths: np.ndarray
    heights: np.ndarray
    karst_centers: np.ndarray
    karst_widths: np.ndarray
    lo: float
    hi: float

    @classmethod
    def random(cls, rng: np.random.Generator, bounds: tuple[float, ...]) -> Terrain:
        x0, y0, x1, y1 = bounds
        n = 14
        centers = np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])
        size = max(x1 - x0, y1 - y0)
        widths = rng.uniform(0.08, 0.22, n) * size
        heights = rng.uniform(0.5, 1.0, n)
        karst = np.column_stack([rng.uniform(x0, x1, 3), rng.uniform(y0, y1, 3)])
        karst_widths = rng.uniform(0.03, 0.06, 3) * size
        grid = np.column_stack([g.ravel() for g in np.meshgrid(
            np.linspace(x0, x1, 60), np.linspace(y0, y1, 60))])
        raw = cls(centers, widths, heights, karst, karst_widths, 0.0, 1.0)._raw(grid)
        return cls(centers, widths, heights, karst, karst_widths, float(raw.min()), float(raw.max()))

    def _raw(self, xy: np.ndarray) -> np.ndarray:
        d2 = ((xy[:, None, :] - self.centers[None, :, :]) ** 2).sum(axis=2)
        return (self.heights * np.exp(-d2 / (2 * self.widths**2))).sum(axis=1)

    def height(self, xy: np.ndarray) -> np.ndarray:
        return np.clip((self._raw(xy) - self.lo) / (self.hi - self.lo), 0.0, 1.0)

    def karst(self, xy: np.ndarray) -> np.ndarray:
        d2 = ((xy[:, None, :] - self.karst_centers[None, :, :]) ** 2).sum(axis=2)
        return np.exp(-d2 / (2 * self.karst_widths**2)).max(axis=1)


def _wandering_line(rng: np.random.Generator, bounds, *, horizontal: bool, wiggle: float):
    """A gently meandering line crossing the bounding box."""
    x0, y0, x1, y1 = bounds
    t = np.linspace(-0.05, 1.05, 40)
    phase, freq = rng.uniform(0, 2 * np.pi), rng.uniform(1.0, 2.5)
    offset = rng.uniform(0.25, 0.75) + wiggle * np.sin(2 * np.pi * freq * t + phase)
    if horizontal:
        xs, ys = x0 + t * (x1 - x0), y0 + offset * (y1 - y0)
    else:
        xs, ys = x0 + offset * (x1 - x0), y0 + t * (y1 - y0)
    return shapely.linestrings(np.column_stack([xs, ys]))


# ------------------------------------------------------------------- parcels


def _sample_points(rng, polygon, n: int, density) -> np.ndarray:
    """``n`` points inside ``polygon`` by rejection sampling on ``density``."""
    x0, y0, x1, y1 = polygon.bounds
    shapely.prepare(polygon)
    chosen: list[np.ndarray] = []
    count = 0
    while count < n:
        xy = np.column_stack([rng.uniform(x0, x1, 4 * n), rng.uniform(y0, y1, 4 * n)])
        inside = shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])
        xy = xy[inside]
        xy = xy[rng.uniform(0, 1, len(xy)) < density(xy)]
        chosen.append(xy)
        count += len(xy)
    return np.concatenate(chosen)[:n]


def _merge_fragments(parts: np.ndarray, min_area: float) -> np.ndarray:
    """Union every part smaller than ``min_area`` (or thinner than 1 m) into its
    longest-shared neighbour, so the tiling stays exact without cut-off slivers."""
    parts = list(parts)  # type: ignore[assignment]  # merged in place below
    areas = shapely.area(np.array(parts))
    width = 2 * areas / np.maximum(shapely.length(np.array(parts)), 1e-9)
    small = [i for i in np.argsort(areas) if areas[i] < min_area or width[i] < 1.0]
    tree = shapely.STRtree(np.array(parts))
    alive = np.ones(len(parts), dtype=bool)
    for i in small:
        if not alive[i]:
            continue
        candidates = [j for j in tree.query(parts[i], predicate="intersects") if j != i and alive[j]]
        if not candidates:
            continue
        shared = [shapely.length(shapely.intersection(parts[i].boundary, parts[j].boundary))
                  for j in candidates]
        j = candidates[int(np.argmax(shared))]
        if max(shared) <= 0:
            continue
        parts[j] = shapely.coverage_union(parts[j], parts[i])
        alive[i] = False
    return np.array(parts, dtype=object)[alive]


GRID = 0.01  # the commune outline is snapped to 1 cm; parcel linework is noded in one pass


def _tile_commune(rng, polygon, terrain: Terrain, roads, river, n: int):
    """Parcels tiling ``polygon`` exactly: Voronoi cells cut by road and river
    corridors, the corridors cut into sheet-sized pieces.

    All linework is noded in ONE operation and polygonized, so neighbouring
    parcels share their vertices exactly (no sliver gaps or overlaps), and
    the commune outline is kept as it is (no parcel edge runs beside it).
    """
    road_zone = shapely.union_all([shapely.buffer(r, w, cap_style="flat") for r, w in roads])
    river_zone = shapely.buffer(river, 12.0, cap_style="flat")
    road_lines = shapely.union_all([r for r, _ in roads])

    def density(xy: np.ndarray) -> np.ndarray:
        h = terrain.height(xy)
        near = shapely.distance(road_lines, shapely.points(xy)) < 120
        return np.where(near, 1.0, np.where(h < 0.35, 0.55, 0.05 + 0.25 * (1 - h)))

    land_zone = shapely.difference(polygon, shapely.union(road_zone, river_zone))
    points = _sample_points(rng, land_zone, n, density)
    cells = shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(points), extend_to=shapely.buffer(shapely.envelope(polygon), 100)))
    boxes = _sheet_boxes(polygon, 600.0)
    linework = shapely.union_all(np.concatenate([
        shapely.boundary(cells), shapely.boundary(boxes),
        [polygon.boundary, road_zone.boundary, river_zone.boundary],
    ]))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(linework)))
    probe = shapely.point_on_surface(faces)
    inside = _index_of(probe, np.array([polygon])) >= 0
    in_river = _index_of(probe, np.array([river_zone])) >= 0
    in_road = (_index_of(probe, np.array([road_zone])) >= 0) & ~in_river
    kind = np.where(in_river, "river", np.where(in_road, "road", "land"))
    piece = np.where(kind == "land", _index_of(probe, cells), _index_of(probe, boxes))
    keep = inside & (piece >= 0)

    parcels, kinds = [], []
    for name in ("land", "road", "river"):
        chosen = keep & (kind == name)
        groups = _dissolve(faces[chosen], piece[chosen])
        merged = _merge_fragments(groups, min_area=60.0 if name == "land" else 20.0)
        parcels.append(merged)
        kinds += [name] * len(merged)
    return shapely.normalize(np.concatenate(parcels)), np.array(kinds)


def _dissolve(faces: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Union the faces sharing a key, then split each union into its connected parts."""
    order = np.argsort(keys, kind="stable")
    faces, keys = faces[order], keys[order]
    _, starts = np.unique(keys, return_index=True)
    unions = [shapely.coverage_union_all(chunk) if len(chunk) > 1 else chunk[0]
              for chunk in np.split(faces, starts[1:])]
    return shapely.get_parts(np.array(unions, dtype=object))


def _index_of(points: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """For each point, the index of the polygon containing it, or -1."""
    tree = shapely.STRtree(polygons)
    point_idx, poly_idx = tree.query(points, predicate="within")
    out = np.full(len(points), -1)
    out[point_idx] = poly_idx
    return out


def _sheet_boxes(polygon, cell: float) -> np.ndarray:
    """A grid of square boxes over the polygon (corridors are cut along it)."""
    x0, y0, x1, y1 = polygon.bounds
    xs, ys = np.arange(x0, x1 + cell, cell), np.arange(y0, y1 + cell, cell)
    lo = np.meshgrid(xs[:-1], ys[:-1])
    hi = np.meshgrid(xs[1:], ys[1:])
    return shapely.box(lo[0].ravel(), lo[1].ravel(), hi[0].ravel(), hi[1].ravel())


# ------------------------------------------------------------------ land use


def _assign_landuse(rng, parcels, kinds, terrain: Terrain, roads, *, urban: bool):
    """Land-use code, owner type and compound split per parcel."""
    n = len(parcels)
    xy = shapely.get_coordinates(shapely.point_on_surface(parcels))
    h = terrain.height(xy)
    karst = terrain.karst(xy)
    road_lines = shapely.union_all([r for r, _ in roads])
    dist = shapely.distance(road_lines, shapely.points(xy))
    area = shapely.area(parcels)
    u = rng.uniform(0, 1, n)

    residential = "ODT" if urban else "ONT"
    code = np.full(n, "RST", dtype=object)
    owner = np.full(n, "GDC", dtype=object)
    code[h < 0.75] = np.where(u[h < 0.75] < 0.55, "RST", "RSN")
    code[(h >= 0.75)] = np.where(u[h >= 0.75] < 0.6, "RPN", "RPT")
    mid = (h >= 0.30) & (h < 0.50)
    code[mid] = np.select([u[mid] < 0.45, u[mid] < 0.75], ["CLN", "BHK"], "RST")
    valley = h < 0.30
    code[valley] = np.select([h[valley] < 0.18, u[valley] < 0.85], ["LUC", "LUK"], "NTS")
    code[(karst > 0.55) & (h >= 0.30)] = "DCS"
    code[karst > 0.75] = "NCS"
    near_road = (dist < 45) & (h < 0.6) & (area < 3000)
    code[near_road] = np.where(u[near_road] < 0.7, residential, "CLN")

    compound = near_road & (code == residential) & (area > 500) & (u < 0.45)
    code[compound] = f"{residential}+CLN"

    # public land along the roads: schools, health, office, cultural house, cemetery
    order = np.argsort(dist + 1e6 * (kinds != "land"))
    specials = ["DGD", "DGD", "DYT", "TSC", "DSH", "TMD", "DCH"]
    specials_owner = ["TSN", "TSN", "TSN", "TCN", "CDS", "TKT", "UBQ"]
    picked = [i for i in order[:400] if 600 < area[i] < 8000][: len(specials)]
    for i, c, o in zip(picked, specials, specials_owner, strict=False):
        code[i], owner[i] = c, o
    slopes = np.flatnonzero((h > 0.35) & (h < 0.55) & (kinds == "land"))[:3]
    code[slopes], owner[slopes] = "NTD", "UBQ"
    unused = np.flatnonzero((h > 0.5) & (u > 0.985) & (kinds == "land"))
    code[unused] = "BCS"

    # owners of forest and unused land
    forest = np.isin(code, ["RPN", "RPT"])
    owner[forest] = np.where(u[forest] < 0.5, "TCN", "CDS")
    owner[(code == "RSN") & (u < 0.3)] = "UBQ"
    owner[(code == "RST") & (u > 0.9)] = "TKT"
    owner[np.isin(code, ["NCS", "DCS", "BCS"])] = "UBQ"
    code[kinds == "road"], owner[kinds == "road"] = "DGT", "UBQ"
    code[kinds == "river"], owner[kinds == "river"] = "SON", "UBQ"
    return code, owner


def _owner_names(rng, owner, commune_name: str) -> np.ndarray:
    family = rng.choice(FAMILY_NAMES, len(owner))
    middle = rng.choice(MIDDLE_NAMES, len(owner))
    given = rng.choice(GIVEN_NAMES, len(owner))
    names = np.char.add(np.char.add(np.char.add(family.astype(str), " "),
                                    np.char.add(middle.astype(str), " ")), given.astype(str))
    institutional = {
        "UBQ": f"UBND {commune_name}",
        "TCN": "Ban quản lý rừng phòng hộ huyện Văn Quan",
        "TSN": f"Trường học, Trạm y tế {commune_name}",
        "TKT": "Công ty TNHH Lâm nghiệp Văn Quan",
        "CDS": f"Cộng đồng dân cư {commune_name}",
    }
    out = names.astype(object)
    for code, name in institutional.items():
        out[owner == code] = name
    return out


def _sheet_and_parcel_numbers(parcels: np.ndarray, sheet_size: float = 1000.0):
    """Map sheets on a 1 km grid numbered from the north-west; parcels numbered
    north-west to south-east within each sheet."""
    xy = shapely.get_coordinates(shapely.point_on_surface(parcels))
    x0, y1 = xy[:, 0].min(), xy[:, 1].max()
    col = ((xy[:, 0] - x0) // sheet_size).astype(int)
    row = ((y1 - xy[:, 1]) // sheet_size).astype(int)
    ncols = col.max() + 1
    sheet = row * ncols + col + 1
    frame = pd.DataFrame({"sheet": sheet, "band": (y1 - xy[:, 1]) // 50, "x": xy[:, 0]})
    frame = frame.sort_values(["sheet", "band", "x"])
    frame["parcel"] = frame.groupby("sheet").cumcount() + 1
    frame = frame.sort_index()
    # renumber sheets densely, so there is no gap in sheet numbers
    dense = {s: i + 1 for i, s in enumerate(sorted(frame["sheet"].unique()))}
    return frame["sheet"].map(dense).to_numpy(), frame["parcel"].to_numpy()


def generate_commune(commune: SampleCommune, boundaries: gpd.GeoDataFrame, seed: int = 2019):
    """Synthetic parcels of one commune, in VN-2000 TM-3 107°15′, with FAMIS columns
    (a clean tiling: problems are planted afterwards by :func:`with_planted_problems`)."""
    rng = np.random.default_rng([seed, int(commune.code)])
    polygon = _commune_polygon(boundaries, commune.code)
    name = boundaries.loc[boundaries["gso_commune_code"] == commune.code, "commune_vn"].iloc[0]
    bounds = polygon.bounds
    terrain = Terrain.random(rng, bounds)
    roads = [(_wandering_line(rng, bounds, horizontal=True, wiggle=0.08), 6.0),
             (_wandering_line(rng, bounds, horizontal=False, wiggle=0.12), 3.0),
             (_wandering_line(rng, bounds, horizontal=True, wiggle=0.15), 2.5)]
    river = _wandering_line(rng, bounds, horizontal=False, wiggle=0.2)
    parcels, kinds = _tile_commune(rng, polygon, terrain, roads, river, commune.parcels)
    code, owner = _assign_landuse(rng, parcels, kinds, terrain, roads, urban=commune.urban)
    sheet, number = _sheet_and_parcel_numbers(parcels)
    area = shapely.area(parcels)
    compound = np.char.find(code.astype(str), "+") > 0
    dt_ont = np.where(compound, np.minimum(np.round(area * rng.uniform(0.15, 0.4, len(area))), 400.0), 0.0)
    frame = gpd.GeoDataFrame(
        {
            "MAXA": commune.code,
            "SHBANDO": sheet.astype(np.int32),
            "SHTHUA": number.astype(np.int32),
            "DIENTICH": np.round(area, 0),
            "KHLOAIDAT": code.astype(str),
            "DT_ONT": dt_ont,
            "TENCHU": _owner_names(rng, owner, name),
            "DOITUONG": owner.astype(str),
        },
        geometry=parcels,
        crs=vn.province_crs(PROVINCE),
    )
    return frame.sort_values(["SHBANDO", "SHTHUA"], ignore_index=True)


def with_planted_problems(frame: gpd.GeoDataFrame, commune: SampleCommune, boundaries: gpd.GeoDataFrame,
                          seed: int = 2019) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """The commune's parcels with its planted QA problems (none unless the commune plants them)."""
    if not commune.plant_problems:
        return frame, pd.DataFrame()
    rng = np.random.default_rng([seed, int(commune.code), 4])
    planted_frame, planted = plant_problems(frame, _commune_polygon(boundaries, commune.code), rng)
    return planted_frame, planted.assign(commune_code=commune.code)
