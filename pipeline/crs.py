"""VN-2000 done right.

The target of every inventory is VN-2000 / TM-3 on the province's central
meridian (k0 = 0.9999, false easting 500 000 m), with its EPSG code where one
exists (e.g. EPSG:9215 for Lạng Sơn's 107°15′).

PROJ is never left to choose a datum transformation: between VN-2000 and
WGS 84 we always use EPSG:6960 (Decision 05/2007/QĐ-BTNMT, coordinate-frame
rotations), and Hanoi-72 goes through EPSG:1544. Both Helmert steps are read
from the EPSG database shipped with PROJ, not retyped. Each transformation is
one PROJ pipeline: inverse source projection → pinned datum shift → target
TM-3 projection. See ``reference/vn2000_crs.md`` for the pitfalls this avoids.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.crs import CoordinateOperation
from pyproj.database import query_crs_info
from pyproj.enums import PJType, TransformDirection

from .errors import CRSError
from .reference import Province, province as find_province
from .vntext import fold

#: EPSG transformation VN-2000 → WGS 84 fixed by Decision 05/2007/QĐ-BTNMT.
VN2000_TO_WGS84_OP = 6960
#: The only EPSG transformation for Hanoi 1972 → WGS 84 (5 m, Vũng Tàu area).
HANOI72_TO_WGS84_OP = 1544
TM3_SCALE = 0.9999
TM3_FALSE_EASTING = 500_000.0


class Datum(StrEnum):
    """The geodetic datums an officer's files come in."""

    VN2000 = "VN-2000"
    WGS84 = "WGS 84"
    HANOI72 = "Hanoi 1972"
    OTHER = "other"


# ------------------------------------------------------------------ target CRS


@cache
def _tm3_epsg_codes() -> dict[float, int]:
    """Central meridian → EPSG code of the (non-deprecated) VN-2000 TM-3 CRS."""
    codes: dict[float, int] = {}
    for info in query_crs_info(auth_name="EPSG", pj_types=PJType.PROJECTED_CRS):
        if info.deprecated or not info.name.startswith("VN-2000 / TM-3"):
            continue
        params = _params(CRS.from_epsg(int(info.code)))
        if float(params.get("k", 0)) == TM3_SCALE and float(params.get("x_0", 0)) == TM3_FALSE_EASTING:
            codes.setdefault(round(float(params["lon_0"]), 6), int(info.code))
    return codes


def tm3_crs(central_meridian_deg: float) -> CRS:
    """VN-2000 / TM-3 on a central meridian: the EPSG CRS where one exists,
    else an equivalent CRS carrying the EPSG:6960 shift as TOWGS84."""
    code = _tm3_epsg_codes().get(round(float(central_meridian_deg), 6))
    if code is not None:
        return CRS.from_epsg(code)
    return CRS.from_proj4(
        f"+proj=tmerc +lat_0=0 +lon_0={central_meridian_deg} +k={TM3_SCALE} "
        f"+x_0={TM3_FALSE_EASTING:.0f} +y_0=0 +ellps=WGS84 +towgs84={_towgs84_6960()} "
        "+units=m +no_defs +type=crs"
    )


def province_crs(province: Province | str | int) -> CRS:
    """The inventory CRS of a province (Lạng Sơn → EPSG:9215)."""
    if not isinstance(province, Province):
        province = find_province(province)
    return tm3_crs(province.central_meridian_deg)


# ----------------------------------------------------------- datum detection


def _proj4(crs: CRS) -> str:
    """The PROJ.4 form of a CRS, without pyproj's "lose information" warning
    (we only read projection parameters from it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return crs.to_proj4() or ""


def _params(crs: CRS) -> dict:
    """PROJ.4 parameters of a CRS as a dict (same caveat as :func:`_proj4`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return crs.to_dict()


def _base(crs: CRS) -> CRS:
    return crs.source_crs if crs.is_bound and crs.source_crs is not None else crs


def _towgs84(crs: CRS) -> list[float] | None:
    match = re.search(r"\+towgs84=([-0-9.,eE+]+)", _proj4(crs)) if crs.is_bound else None
    return [float(v) for v in match.group(1).split(",")] if match else None


def _is_vn_tm3(crs: CRS) -> bool:
    params = _params(_base(crs))
    return (
        params.get("proj") == "tmerc"
        and abs(float(params.get("k", params.get("k_0", 0))) - TM3_SCALE) < 1e-9
        and abs(float(params.get("x_0", 0)) - TM3_FALSE_EASTING) < 1e-6
        and 102.0 <= float(params.get("lon_0", 0)) <= 109.5
    )


#: The names GDAL and PROJ give a CRS that has none.
UNNAMED = ("", "unnamed", "unknown")


def crs_label(crs: CRS) -> str:
    """A CRS as the reports name it: its code (``EPSG:9215``), else its name,
    else (a MapInfo file's, an unnamed .prj's) its projection's parameters and
    datum in one line; never a whole WKT."""
    authority = crs.to_authority()
    if authority is not None:
        return ":".join(authority)
    if crs.name not in UNNAMED:
        return crs.name
    base = _base(crs)
    params = _params(base)
    shown = [f"+{key}={params[key]:g}" if isinstance(params[key], float) else f"+{key}={params[key]}"
             for key in ("proj", "zone", "lon_0", "lat_0", "k", "x_0", "y_0") if key in params]
    datum = base.datum.name if base.datum is not None else ""
    if datum.startswith("Unknown based on") or datum in UNNAMED:  # PROJ's name for a bare TOWGS84
        datum = f"{datum_of(crs).value}, TOWGS84" if _towgs84(crs) else datum_of(crs).value
    return " ".join(shown) + f" ({datum})"


def is_tm3_on(crs: CRS, central_meridian_deg: float) -> bool:
    """True when ``crs`` already is VN-2000 / TM-3 on that meridian."""
    params = _params(_base(crs))
    return (
        datum_of(crs) is Datum.VN2000
        and _is_vn_tm3(crs)
        and abs(float(params.get("lon_0", 0)) - central_meridian_deg) < 1e-9
        and float(params.get("y_0", 0)) == 0
    )


def datum_of(crs: CRS) -> Datum:
    """Which datum a declared CRS really means.

    Names as written by ArcGIS, MapInfo, QGIS and MicroStation are accepted;
    a TM-3 grid with k0 = 0.9999 on a Vietnamese meridian is VN-2000 whatever
    its datum label says (no WGS 84 grid of that shape is used in Vietnam), and
    so is any datum whose TOWGS84 is the 05/2007 set in either sign convention.
    """
    geodetic = _base(crs).geodetic_crs
    datum = geodetic.datum if geodetic is not None else None
    name = fold(datum.name) if datum is not None else ""
    code = geodetic.to_epsg() if geodetic is not None else None
    towgs84 = _towgs84(crs)
    if code == 4756 or ("2000" in name and ("vn" in name or "vietnam" in name)):
        return Datum.VN2000
    if towgs84 and len(towgs84) >= 3 and np.allclose(
        np.abs(towgs84[:3]), np.abs(_helmert_params(VN2000_TO_WGS84_OP)[:3]), atol=1e-3
    ):
        return Datum.VN2000
    if _is_vn_tm3(crs):
        return Datum.VN2000
    if code == 4147 or "hanoi" in name:
        return Datum.HANOI72
    if code == 4326 or name in {"wgs84", "worldgeodeticsystem1984", "dwgs1984", "wgs1984"}:
        return Datum.WGS84
    return Datum.OTHER


# ------------------------------------------------------------- pipelines


@cache
def _helmert_step(op_code: int) -> str:
    """The ``+proj=helmert …`` step of an EPSG transformation, from proj.db."""
    definition = CoordinateOperation.from_epsg(op_code).to_proj4()
    steps = [step.strip() for step in definition.split("+step")]
    (helmert,) = [s for s in steps if s.startswith("+proj=helmert")]
    return helmert


def _helmert_params(op_code: int) -> list[float]:
    step = _helmert_step(op_code)
    keys = ("x", "y", "z", "rx", "ry", "rz", "s")
    values = dict(re.findall(r"\+(\w+)=([-0-9.eE]+)", step))
    return [float(values.get(k, 0.0)) for k in keys]


def _towgs84_6960() -> str:
    """EPSG:6960 written as PROJ's TOWGS84 (position vector: rotations flipped)."""
    x, y, z, rx, ry, rz, s = _helmert_params(VN2000_TO_WGS84_OP)
    return ",".join(repr(v) for v in (x, y, z, -rx, -ry, -rz, s))


def _projection_step(crs: CRS) -> str | None:
    """PROJ parameters of a projected CRS's map projection (no datum terms),
    or None for a geographic CRS."""
    base = _base(crs)
    if base.is_geographic:
        return None
    if not base.is_projected:
        raise CRSError(f"{crs.name!r} is neither geographic nor projected.")
    keep = []
    for token in _proj4(base).split():
        key = token.lstrip("+").split("=")[0]
        if key in {"type", "no_defs", "towgs84", "datum", "ellps", "a", "b", "rf", "f", "nadgrids"}:
            continue
        keep.append(token)
    keep.append(_ellipsoid_args(base))
    return " ".join(keep)


def _ellipsoid_args(crs: CRS) -> str:
    ellipsoid = _base(crs).ellipsoid
    if ellipsoid is None:
        raise CRSError(f"{crs.name!r} has no ellipsoid: it cannot be placed on the Earth.")
    if not ellipsoid.inverse_flattening:  # a sphere
        return f"+a={ellipsoid.semi_major_metre!r} +b={ellipsoid.semi_minor_metre!r}"
    return f"+a={ellipsoid.semi_major_metre!r} +rf={ellipsoid.inverse_flattening!r}"


def _datum_steps(datum: Datum, source: CRS) -> list[str]:
    """Geocentric steps taking (lon, lat) radians from ``datum`` to VN-2000."""
    if datum is Datum.VN2000:
        return []
    shifts = {
        Datum.WGS84: [f"+inv {_helmert_step(VN2000_TO_WGS84_OP)}"],
        Datum.HANOI72: [_helmert_step(HANOI72_TO_WGS84_OP), f"+inv {_helmert_step(VN2000_TO_WGS84_OP)}"],
    }[datum]
    return [
        "+proj=push +v_3",
        f"+proj=cart {_ellipsoid_args(source)}",
        *shifts,
        "+inv +proj=cart +ellps=WGS84",
        "+proj=pop +v_3",
    ]


def pipeline_to_tm3(source: CRS, central_meridian_deg: float) -> str:
    """The PROJ pipeline from ``source`` (x/y or lon/lat order) to VN-2000 TM-3."""
    datum = datum_of(source)
    if datum is Datum.OTHER:
        raise CRSError(
            f"No pinned transformation from datum {getattr(_base(source).datum, 'name', '?')!r} to VN-2000. "
            "Reproject the file to WGS 84 or VN-2000 first."
        )
    projection = _projection_step(source)
    steps = [f"+inv {projection}" if projection else "+proj=unitconvert +xy_in=deg +xy_out=rad"]
    steps += _datum_steps(datum, source)
    steps.append(
        f"+proj=tmerc +lat_0=0 +lon_0={central_meridian_deg!r} +k={TM3_SCALE} "
        f"+x_0={TM3_FALSE_EASTING:.0f} +y_0=0 +ellps=WGS84"
    )
    return "+proj=pipeline " + " ".join(f"+step {step}" for step in steps)


@cache
def _transformer(source_wkt: str, central_meridian_deg: float) -> Transformer:
    return Transformer.from_pipeline(pipeline_to_tm3(CRS.from_wkt(source_wkt), central_meridian_deg))


def transformer_to_tm3(source: CRS, central_meridian_deg: float) -> Transformer:
    """A pinned transformer from ``source`` to VN-2000 TM-3 (x/y in, E/N out)."""
    return _transformer(source.to_wkt(), float(central_meridian_deg))


def wgs84_to_tm3(lon, lat, central_meridian_deg: float):
    """WGS 84 lon/lat → VN-2000 TM-3 easting (Y), northing (X) via EPSG:6960."""
    return transformer_to_tm3(CRS.from_epsg(4326), central_meridian_deg).transform(lon, lat)


def tm3_to_wgs84(easting, northing, central_meridian_deg: float):
    """VN-2000 TM-3 easting/northing → WGS 84 lon/lat via EPSG:6960."""
    transformer = transformer_to_tm3(CRS.from_epsg(4326), central_meridian_deg)
    return transformer.transform(easting, northing, direction=TransformDirection.INVERSE)


def reproject(
    geometries: np.ndarray, source: CRS, central_meridian_deg: float, *, inverse: bool = False
) -> np.ndarray:
    """Vectorised reprojection of shapely geometries from ``source`` to VN-2000
    TM-3 (or back to ``source`` with ``inverse=True``)."""
    if is_tm3_on(source, central_meridian_deg):
        return np.asarray(geometries)  # already there: keep every coordinate bit for bit
    transformer = transformer_to_tm3(source, central_meridian_deg)
    direction = TransformDirection.INVERSE if inverse else TransformDirection.FORWARD

    def _apply(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1], direction=direction)
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geometries), _apply)


# ------------------------------------------------------------ CRS detection

HANOI72_WARNING = ("Hanoi-72 converted through EPSG:1544 (accuracy about 5 m, derived in the "
                   "Vũng Tàu area): check the result against VN-2000 control points")
#: Vietnam's onshore extent (EPSG:4756 area of use), degrees.
VIETNAM_BBOX = (102.14, 8.33, 109.53, 23.4)


@dataclass(frozen=True)
class SourceCRS:
    """How a file's coordinates are to be read: a CRS, possibly after swapping
    X/Y or restoring a dropped 500 km false easting, and why."""

    crs: CRS
    reason: str
    swap_xy: bool = False
    easting_offset: float = 0.0
    warning: str | None = None

    def prepare(self, geometries: np.ndarray) -> np.ndarray:
        """Apply the swap/offset so that ``crs`` describes the coordinates."""
        if not self.swap_xy and not self.easting_offset:
            return geometries

        def fix(coords: np.ndarray) -> np.ndarray:
            out = coords[:, ::-1].copy() if self.swap_xy else coords.copy()
            out[:, 0] += self.easting_offset
            return out

        return shapely.transform(geometries, fix)

    def describe(self) -> str:
        extra = [" with X/Y swapped" if self.swap_xy else "",
                 f" with {self.easting_offset:+.0f} m false easting restored" if self.easting_offset else ""]
        label = crs_label(self.crs)
        named = self.crs.name if self.crs.name not in UNNAMED and self.crs.name != label else ""
        return (f"{named} ({label})" if named else label) + "".join(extra)


def province_bbox(central_meridian_deg: float) -> tuple[float, float, float, float]:
    """Lon/lat box where a province's data may lie: the EPSG area of use of its
    TM-3 CRS (e.g. Lạng Sơn for EPSG:9215), or Vietnam when there is none."""
    area = tm3_crs(central_meridian_deg).area_of_use
    return tuple(area.bounds) if area is not None else VIETNAM_BBOX  # type: ignore[return-value]


def _fits(bounds, candidate: SourceCRS, meridian: float, box) -> bool:
    x0, y0, x1, y1 = bounds
    corners = shapely.multipoints(np.array([[x0, y0], [x1, y1], [(x0 + x1) / 2, (y0 + y1) / 2]]))
    try:
        tm3 = shapely.get_coordinates(reproject(candidate.prepare(np.array([corners])), candidate.crs, meridian))
        lon, lat = tm3_to_wgs84(tm3[:, 0], tm3[:, 1], meridian)
    except Exception:  # PROJ cannot even compute it: not a fit
        return False
    lon, lat = np.asarray(lon), np.asarray(lat)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        return False
    vx0, vy0, vx1, vy1 = VIETNAM_BBOX
    in_vietnam = ((lon > vx0 - 0.5) & (lon < vx1 + 0.5) & (lat > vy0 - 0.5) & (lat < vy1 + 0.5)).all()
    bx0, by0, bx1, by1 = box
    centre_in_province = bx0 - 0.3 < lon[2] < bx1 + 0.3 and by0 - 0.3 < lat[2] < by1 + 0.3
    return bool(in_vietnam and centre_in_province)


def _candidates(meridian: float) -> list[SourceCRS]:
    target = tm3_crs(meridian)
    return [
        SourceCRS(target, "coordinates fit the province's VN-2000 TM-3"),
        SourceCRS(CRS.from_epsg(3405), "coordinates fit VN-2000 / UTM zone 48N"),
        SourceCRS(CRS.from_epsg(3406), "coordinates fit VN-2000 / UTM zone 49N"),
        SourceCRS(CRS.from_epsg(4326), "coordinates are degrees (longitude/latitude): read as WGS 84"),
        SourceCRS(CRS.from_epsg(4326), "coordinates are degrees written latitude first: swapped, read as WGS 84",
                  swap_xy=True),
        SourceCRS(target, "coordinates fit VN-2000 TM-3 once X and Y are swapped "
                          "(Vietnamese X = northing)", swap_xy=True),
        SourceCRS(target, "eastings lack the 500 000 m false easting of VN-2000 TM-3",
                  easting_offset=TM3_FALSE_EASTING),
        SourceCRS(target, "X/Y swapped and eastings lack the 500 000 m false easting",
                  swap_xy=True, easting_offset=TM3_FALSE_EASTING),
        SourceCRS(CRS.from_epsg(2044), "coordinates fit Hanoi 1972 / Gauss-Krüger zone 18",
                  warning=HANOI72_WARNING),
        SourceCRS(CRS.from_epsg(2045), "coordinates fit Hanoi 1972 / Gauss-Krüger zone 19",
                  warning=HANOI72_WARNING),
    ]


def detect_crs(bounds, declared: CRS | None, central_meridian_deg: float, *,
               given_by_config: bool = False) -> SourceCRS:
    """Choose how to read a file's coordinates.

    A declared CRS is trusted only when the coordinates fit it (they fall in
    the province); otherwise the candidates are tried in turn: the province's
    TM-3, VN-2000 UTM 48N/49N, degrees, X/Y swapped, no false easting,
    Hanoi-72. A CRS from the config wins, with a warning when it does not fit.
    """
    box = province_bbox(central_meridian_deg)
    if declared is not None:
        warning = HANOI72_WARNING if datum_of(declared) is Datum.HANOI72 else None
        if datum_of(declared) is Datum.OTHER:
            warning = None
        elif _fits(bounds, SourceCRS(declared, ""), central_meridian_deg, box):
            how = "given in the config" if given_by_config else "declared by the file"
            return SourceCRS(declared, f"{how}; the coordinates fit it", warning=warning)
        if given_by_config:
            return SourceCRS(declared, "given in the config",
                             warning=f"the coordinates do not fall in the province with {declared.to_string()}; "
                                     "check the crs given in inventory.toml")
    for candidate in _candidates(central_meridian_deg):
        if _fits(bounds, candidate, central_meridian_deg, box):
            if declared is not None:
                reason = (f"declared {declared.to_string()} ({declared.name}) but the coordinates do not "
                          f"fit it; {candidate.reason}")
                return SourceCRS(candidate.crs, reason, candidate.swap_xy, candidate.easting_offset,
                                 candidate.warning)
            return SourceCRS(candidate.crs, f"no CRS declared; {candidate.reason}", candidate.swap_xy,
                             candidate.easting_offset, candidate.warning)
    x0, y0, x1, y1 = bounds
    raise CRSError(
        f"the coordinates (X {x0:.3f}…{x1:.3f}, Y {y0:.3f}…{y1:.3f}) fit no coordinate system "
        f"of the province (VN-2000 TM-3 {central_meridian_deg}°, UTM 48N/49N, degrees, swapped or "
        "without false easting, Hanoi-72). Check that the file belongs to this province, or give "
        "its crs in a [[sources]] entry of inventory.toml."
    )


def in_province_tm3(geometries: np.ndarray, declared: CRS | None, central_meridian_deg: float, *,
                    given_by_config: bool = False) -> np.ndarray:
    """A layer's shapes in the province's TM-3, read in the CRS their coordinates
    fit (:func:`detect_crs`, over the bounds of the shapes there are)."""
    present = geometries[~(shapely.is_missing(geometries) | shapely.is_empty(geometries))]
    source = detect_crs(shapely.total_bounds(present), declared, central_meridian_deg, given_by_config=given_by_config)
    return reproject(source.prepare(geometries), source.crs, central_meridian_deg)
