"""Parcels drawn as lines, as a cadastral sheet converted from MicroStation
(FAMIS, TMV.Map) or AutoCAD often holds them: each parcel one closed line
carrying its attributes; or only the lines between parcels, with a label
inside each parcel, as a text of the drawing (DGN, DXF) or as a point in a
file of its own (``ranh_thua.shp`` beside ``nhan_thua.shp``). The faces the
lines enclose are then the parcels, each with the attributes of the label
inside it."""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import PurePosixPath

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .read import Source, layer_info

#: A row's reason given before the contract (the first reason wins there).
REASON_COLUMN = "kiemke_reason"
#: The column of a drawing's texts as GDAL reads them (DGN, DXF), also in a file of points saved from one.
TEXT_COLUMN = "Text"
#: Drawings (CAD) whose parcels are shapes or lines labelled by the texts placed inside them.
DRAWING_DRIVERS = ("DGN", "DXF")
#: Words of a file's name that say what it holds; what is left pairs a folder's files.
_ROLE_WORDS = re.compile(r"ranh|duong|lines?|arcs?|nhan|labels?|texts?|annotations?|anno|diem|points?|thua|"
                         r"parcels?|[\W_]+", re.IGNORECASE)
_LINEAR = [1, 2, 5]  # LineString, LinearRing, MultiLineString
_POLYGONAL = [3, 6]
#: A drawing's text that is a land-use code (or several joined by '+').
_CODE_TEXT = re.compile(r"[A-Za-z]{2,3}(\+[A-Za-z]{2,3})*")
#: Shapefile header shape types of polygons (2-D, Z, M): such a file is parcels, not lines or labels.
_SHP_POLYGON_TYPES = {5, 15, 25}


def close_rings(geoms: np.ndarray) -> tuple[np.ndarray, int]:
    """Closed lines, each a parcel's boundary drawn as a polyline, as polygons."""
    ring = (np.isin(shapely.get_type_id(geoms), [1, 2]) & shapely.is_closed(geoms)
            & (shapely.get_num_coordinates(geoms) >= 4))
    if not ring.any():
        return geoms, 0
    out = np.array(geoms, dtype=object, copy=True)
    out[ring] = [shapely.Polygon(line.coords) for line in out[ring]]
    return out, int(ring.sum())


def faces_of(lines: np.ndarray, crs: object = None) -> np.ndarray:
    """The faces the lines enclose, once each: the lines are noded together
    first, so that a boundary drawn twice (once with each parcel) counts once,
    on a grid of a tenth of a millimetre (:func:`snapping_grid`), so that two
    drawings of a boundary that differ by floating-point noise leave no sliver."""
    parts = shapely.get_parts(np.asarray(lines, dtype=object))
    parts = parts[np.isin(shapely.get_type_id(parts), _LINEAR) & ~shapely.is_empty(parts)]
    if not len(parts):
        return np.array([], dtype=object)
    parts = shapely.set_precision(parts, snapping_grid(parts, crs))
    return shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.union_all(parts))))


def snapping_grid(geoms: np.ndarray, crs: object = None) -> float:
    """A tenth of a millimetre in the lines' units: degrees when their CRS is
    geographic (or, without one, when every coordinate fits degrees), else metres."""
    geographic = getattr(crs, "is_geographic", None)
    if geographic is None:
        xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
        geographic = max(abs(xmin), abs(xmax)) <= 180 and max(abs(ymin), abs(ymax)) <= 90
    return 1e-9 if geographic else 1e-4


def face_ids(faces: np.ndarray) -> np.ndarray:
    """A FID for each face that no label names: negative, from the face's own
    vertices (not its place in the list), so that a correction by FID keeps
    naming it when other lines change; one whose own lines changed names no
    face any more, and the report says so."""
    digests = [zlib.crc32(shapely.to_wkb(shapely.normalize(face))) for face in faces]
    ids = -1 - np.array(digests, dtype=np.int64)
    for i in np.flatnonzero(pd.Series(ids).duplicated().to_numpy()):  # (a 1 in 4 million chance for two faces)
        while ids[i] in ids[:i]:
            ids[i] -= 1
    return ids


def label_faces(lines: np.ndarray, labels: gpd.GeoDataFrame, describe: pd.Series,
                shared: tuple[str, ...] = ()) -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    """The faces of ``lines`` as rows, each with the attributes of the label
    point inside it (``describe``: each label as the officer knows it).

    A face without a label has a negative FID (:func:`face_ids`) and blank attributes, but
    for the ``shared`` columns (commune code, sheet number) that hold one value
    on every label; a face with several labels, and a label in no face, are
    given their reason in :data:`REASON_COLUMN`. Returns the rows and how many
    of each kind."""
    shapes = faces_of(lines, labels.crs)
    label_at, face_at = shapely.STRtree(shapes).query(labels.geometry.values, predicate="within")
    per_face = pd.Series(label_at).groupby(face_at)
    first, size = per_face.min(), per_face.size()
    attributes = labels.drop(columns="geometry").iloc[first.to_numpy()].set_axis(first.index)
    rows = attributes.reindex(range(len(shapes)))
    unlabelled = rows["source_fid"].isna().to_numpy()
    rows["source_fid"] = np.where(unlabelled, face_ids(shapes), rows["source_fid"].fillna(0)).astype(np.int64)
    for column in shared:
        values = labels[column].dropna().unique()
        if len(values) == 1:
            rows[column] = rows[column].fillna(values[0])
    rows[REASON_COLUMN] = ""
    for face in size.index[size > 1]:
        names = ", ".join(describe.iloc[np.sort(per_face.get_group(face).to_numpy())].astype(str))
        rows.loc[face, REASON_COLUMN] = (f"{size[face]} labels inside one face of the boundary lines ({names}): "
                                         "the line between them is missing")
    lost = labels.iloc[np.setdiff1d(np.arange(len(labels)), label_at)].copy()
    lost[REASON_COLUMN] = "label in no closed face of the boundary lines: they do not close around it"
    faces = gpd.GeoDataFrame(rows, geometry=shapes, crs=labels.crs)
    counts = {"faces": len(shapes), "unlabelled": int(unlabelled.sum()), "crowded": int((size > 1).sum()),
              "outside": len(lost)}
    return pd.concat([faces, lost], ignore_index=True), counts


def label_drawing(frame: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, int, int, int]:
    """Turn a drawing's element table (DGN, DXF) into parcels: closed shapes (or,
    in a drawing without any, the faces its lines enclose) get the land-use code
    and parcel number from the texts placed inside them (as FAMIS draws them).
    Texts are labels, not features: they are consumed and counted. Returns
    (shapes with KHLOAIDAT/SHTHUA, texts used, faces built, land-use texts in no shape)."""
    texts_of = frame[TEXT_COLUMN] if TEXT_COLUMN in frame.columns else pd.Series(None, index=frame.index, dtype=object)
    is_text = texts_of.notna().to_numpy() & np.isin(shapely.get_type_id(frame.geometry.values), [0, 4])
    texts = frame[is_text]
    shapes = frame[~is_text].copy()
    built = 0
    if not np.isin(shapely.get_type_id(shapes.geometry.values), _POLYGONAL).any():
        faces = faces_of(shapes.geometry.values, frame.crs)
        if built := len(faces):
            shapes = gpd.GeoDataFrame({"source_fid": face_ids(faces)}, geometry=faces, crs=frame.crs)
    words = texts[TEXT_COLUMN].astype(str).str.strip().to_numpy() if len(texts) else np.array([], dtype=object)
    code = np.array([bool(_CODE_TEXT.fullmatch(w)) for w in words], dtype=bool)
    number = np.array([w.isdigit() for w in words], dtype=bool)
    text_idx, shape_idx = shapely.STRtree(shapes.geometry.values).query(texts.geometry.values, predicate="within")
    stray = int((code & ~np.isin(np.arange(len(words)), text_idx)).sum())
    code, number, words = code[text_idx], number[text_idx], words[text_idx]
    landuse = pd.Series(words[code], index=shape_idx[code]).groupby(level=0).first()
    parcel = pd.Series(words[number], index=shape_idx[number]).groupby(level=0).first()
    for column, labels in (("KHLOAIDAT", landuse), ("SHTHUA", parcel)):
        values = labels.reindex(range(len(shapes)))
        shapes[column] = values.astype(object).where(values.notna(), None).to_numpy()
    return shapes.reset_index(drop=True), int(code.sum() + number.sum()), built, stray


def pair_lines_with_labels(sources: list[Source], has_landuse: Callable[[list[str]], bool]) -> list[Source]:
    """Give a folder's (or a GeoPackage's) layers of boundary lines without land
    use to its layer of labels (points with land use, or a drawing's texts
    saved as points): by name once the words for lines and labels are left out
    (``To05_ranh`` with ``To05_nhan``), or, in a folder without polygons, its
    only lines to its only labels. The lines are then not read on their own."""
    kinds = {source: _kind(source, has_landuse) for source in sources}
    folders: dict[tuple, list[Source]] = defaultdict(list)
    for source, kind in kinds.items():
        if kind:
            folders[_folder(source)].append(source)
    given: dict[Source, tuple[Source, ...]] = {}
    for members in folders.values():
        labels = [s for s in members if kinds[s] == "labels"]
        lines = [s for s in members if kinds[s] == "lines"]
        alone = len(labels) == len(lines) == 1 and "polygons" not in {kinds[s] for s in members}
        for label in labels:
            same_name = tuple(s for s in lines if _name_key(s) == _name_key(label))
            given[label] = same_name or (tuple(lines) if alone else ())
    used = {line for lines in given.values() for line in lines}
    return [replace(s, lines=given[s]) if given.get(s) else s for s in sources if s not in used]


def _kind(source: Source, has_landuse: Callable[[list[str]], bool]) -> str | None:
    """"lines" (lines without land use), "labels" (points with it, or texts),
    "polygons" or None."""
    try:
        if source.path.suffix.lower() == ".shp" and not source.member:
            with open(source.path, "rb") as fh:
                header = fh.read(36)
            if len(header) == 36 and int.from_bytes(header[32:36], "little") in _SHP_POLYGON_TYPES:
                return "polygons"  # most parcel files: no need to open them here
        info = layer_info(source.gdal_path, source.layer)
    except Exception:  # unreadable (not a dataset, no permission): ingest says why
        return None
    geometry = str(info.get("geometry_type") or "").split(" ")[0]
    fields = list(info.get("fields", []))
    if geometry in ("Polygon", "MultiPolygon"):
        return "polygons"
    if geometry in ("LineString", "MultiLineString") and not has_landuse(fields):
        return "lines"
    if geometry in ("Point", "MultiPoint") and (has_landuse(fields) or TEXT_COLUMN in fields):
        return "labels"
    return None


def _folder(source: Source) -> tuple:
    if source.layer is not None:
        return (source.path,)
    if source.member:
        return (source.path, str(PurePosixPath(source.member).parent))
    return (source.path.parent,)


def _name_key(source: Source) -> str:
    name = source.layer or (PurePosixPath(source.member).stem if source.member else source.path.stem)
    return _ROLE_WORDS.sub("", name.lower())
