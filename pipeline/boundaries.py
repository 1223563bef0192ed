"""Administrative boundaries: commune polygons with their codes and names,
in the province's VN-2000 TM-3 CRS (for QA, roll-ups, form headers, maps)."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from . import crs as vn
from .config import Boundaries
from .errors import CRSError, InputFileError
from .io import read_layer_holding
from .vntext import repair_names

BOUNDARY_COLUMNS = ["commune_code", "commune_name", "district_code", "district_name", "geometry"]


def load_boundaries(spec: Boundaries | None, central_meridian_deg: float) -> gpd.GeoDataFrame:
    """Commune boundaries from the run's ``[boundaries]`` (or none).

    Codes are normalised (5-digit communes, 3-digit districts); geometry is
    reprojected with the pinned VN-2000 pipeline.
    """
    if not spec:
        return gpd.GeoDataFrame(columns=BOUNDARY_COLUMNS, geometry="geometry")
    path = spec.path
    fields = {
        "commune_code": spec.commune_code_field,
        "commune_name": spec.commune_name_field,
        "district_code": spec.district_code_field,
        "district_name": spec.district_name_field,
    }
    try:
        frame = read_layer_holding(path, fields.values())
    except Exception as exc:
        raise InputFileError(f"{path}: cannot read the boundary file ({exc}).") from None
    missing = [f for f in fields.values() if f not in frame.columns]
    if missing:
        raise InputFileError(
            f"{path}: fields {missing} are missing; present: {list(frame.columns)}. "
            "Name the right fields under [boundaries] in inventory.toml."
        )
    frame = in_province_crs(frame, central_meridian_deg, path)
    out = gpd.GeoDataFrame({k: frame[v].astype("string") for k, v in fields.items()},
                           geometry=frame.geometry.values, crs=frame.crs)
    for name in ("commune_name", "district_name"):  # an old boundary file's names are often TCVN3
        out[name] = pd.array(repair_names(out[name].tolist()), dtype="string")
    out["commune_code"] = padded_codes(out["commune_code"], 5)
    out["district_code"] = padded_codes(out["district_code"], 3)
    return out[out["commune_code"].notna()].reset_index(drop=True)


def padded_code(value: object, width: int) -> str | None:
    """An administrative code as text of ``width`` digits: ``6286``, ``'6286'``
    and ``6286.0`` (a numeric field with a blank in it reads as floats) all give
    ``'06286'``; a blank gives None."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = re.sub(r"\.0+$", "", str(value).strip())
    return text.zfill(width) if text else None


def padded_codes(values: pd.Series, width: int) -> pd.Series:
    """:func:`padded_code` of each value (<NA> for a blank)."""
    return pd.Series([padded_code(v, width) for v in values], index=values.index, dtype="string")


def in_province_crs(frame: gpd.GeoDataFrame, central_meridian_deg: float, path: object = "") -> gpd.GeoDataFrame:
    """A polygon layer with its geometry in the province's TM-3, reprojected with the
    pinned VN-2000 pipeline: from the CRS it declares when its coordinates fit it,
    else from the one they fit, as a parcel file's (a boundary shapefile without
    its .prj is in VN-2000 TM-3 or UTM as often as in degrees); a layer that fits
    none of the province's (a whole country's) is read in the CRS it declares."""
    declared = CRS.from_user_input(frame.crs) if frame.crs is not None else None
    shapes = np.asarray(frame.geometry.values)
    try:
        projected = vn.in_province_tm3(shapes, declared, central_meridian_deg)
    except CRSError as exc:
        if declared is None:
            raise InputFileError(f"{path}: the file declares no coordinate system (no .prj) and {exc}") from None
        projected = vn.reproject(shapes, declared, central_meridian_deg)
    return frame.set_geometry(projected, crs=vn.tm3_crs(central_meridian_deg))
