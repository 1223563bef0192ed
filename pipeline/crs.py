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
from enum import Enum
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


class Datum(str, Enum):
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
            f"No pinned transformation from datum {_base(source).datum.name!r} to VN-2000. "
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
