"""Topology problems planted on purpose in the bundled sample, for QA to find.

Each plant makes exactly one problem, placed where nothing else is touched:
overlaps (a half-disc of a neighbour added to a parcel), gaps (a square cut
out of a large parcel; a disc cut off at the commune boundary), slivers (a
15 cm strip split off a parcel as its own record), invalid rings (a
zero-width spike into a parcel), a duplicated parcel, and a parcel reaching
across the commune boundary. The list is written next to the sample
(``planted_problems.csv``) and in its README.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

PLAN = {"overlaps": 2, "gaps_inside": 2, "gaps_boundary": 1, "slivers": 2, "invalid": 2,
        "duplicates": 1, "crossings": 1}


def _neighbours(geoms: np.ndarray, tree: shapely.STRtree, shape) -> np.ndarray:
    return tree.query(shape, predicate="intersects")


def _next_number(frame: gpd.GeoDataFrame, sheet: int) -> int:
    return int(frame.loc[frame["SHBANDO"] == sheet, "SHTHUA"].max()) + 1


def _row(kind: str, frame: gpd.GeoDataFrame, idx: list[int], geometry, detail: str) -> dict:
    labels = " & ".join(f"{frame.at[i, 'SHBANDO']}/{frame.at[i, 'SHTHUA']}" for i in idx)
    point = shapely.point_on_surface(geometry)
    return {"problem": kind, "parcels": labels, "x_northing": round(point.y, 2), "y_easting": round(point.x, 2),
            "area_m2": round(float(shapely.area(geometry)), 2), "detail": detail}


def plant_problems(frame: gpd.GeoDataFrame, polygon, rng: np.random.Generator):
    """Return the frame with the planted problems, and the list of them."""
    frame = frame.copy()
    geoms = np.asarray(frame.geometry.values, dtype=object)
    tree = shapely.STRtree(geoms)
    land = frame["KHLOAIDAT"].isin(["RST", "RSN", "LUK", "LUC", "CLN", "BHK"]).to_numpy()
    area = shapely.area(geoms)
    order = rng.permutation(len(frame))
    used: set[int] = set()
    planted: list[dict] = []
    extra: list[dict] = []

    def free(indices) -> bool:
        return not (set(map(int, indices)) & used)

    def mark(*indices) -> None:
        used.update(int(i) for i in indices)
        for i in indices:  # keep the neighbours of a planted problem out of other plants
            used.update(int(j) for j in _neighbours(geoms, tree, shapely.buffer(geoms[i], 30.0)))

    # overlaps: A takes a half-disc (r = 4 m) of its neighbour B at the middle of their shared edge
    for a in order:
        if sum(p["problem"] == "overlaps" for p in planted) == PLAN["overlaps"]:
            break
        if not land[a] or area[a] < 2000 or not free([a]):
            continue
        for b in _neighbours(geoms, tree, geoms[a]):
            shared = shapely.intersection(geoms[a].boundary, geoms[b].boundary)
            if b == a or not land[b] or shapely.length(shared) < 40 or not free([b]):
                continue
            disc = shapely.buffer(shapely.line_interpolate_point(shapely.line_merge(shared), 0.5,
                                                                 normalized=True), 4.0)
            if set(_neighbours(geoms, tree, disc)) != {a, b}:
                continue
            bite = shapely.intersection(disc, geoms[b])
            geoms[a] = shapely.union(geoms[a], bite)
            planted.append(_row("overlaps", frame, [a, b], bite, "parcel grown 4 m into its neighbour"))
            mark(a, b)
            break

    # gaps inside: a 6 × 6 m square cut out of the middle of a large parcel
    for a in order:
        if sum(p["problem"] == "gaps" for p in planted) == PLAN["gaps_inside"]:
            break
        if not land[a] or area[a] < 20_000 or not free([a]):
            continue
        centre = shapely.point_on_surface(shapely.buffer(geoms[a], -20.0))
        if centre.is_empty:
            continue
        square = shapely.buffer(centre, 3.0, cap_style="square")
        geoms[a] = shapely.difference(geoms[a], square)
        planted.append(_row("gaps", frame, [a], square, "6 × 6 m hole: no parcel covers it"))
        mark(a)

    # boundary gap and crossing: at commune-boundary vertices touched by one parcel only
    vertices = shapely.points(shapely.get_coordinates(polygon.exterior))
    for kind, count in (("gaps", PLAN["gaps_boundary"]), ("crossings", PLAN["crossings"])):
        done = 0
        for v in rng.permutation(len(vertices)):
            if done == count:
                break
            disc = shapely.buffer(vertices[v], 5.0)
            hits = _neighbours(geoms, tree, disc)
            if len(hits) != 1 or not free(hits) or not land[hits[0]]:
                continue
            a = int(hits[0])
            if kind == "gaps":
                piece = shapely.intersection(disc, polygon)
                geoms[a] = shapely.difference(geoms[a], disc)
                detail = "disc cut off at the commune boundary: commune area with no parcel"
            else:
                piece = shapely.difference(disc, polygon)
                geoms[a] = shapely.union(geoms[a], piece)
                detail = "parcel drawn 5 m beyond the commune boundary"
            planted.append(_row(kind, frame, [a], piece, detail))
            mark(a)
            done += 1

    # slivers: a 15 cm strip along the longest edge split off as its own parcel
    for a in order:
        if sum(p["problem"] == "slivers" for p in planted) == PLAN["slivers"]:
            break
        if not land[a] or area[a] < 3000 or not free([a]) or geoms[a].geom_type != "Polygon":
            continue
        ring = shapely.get_coordinates(geoms[a].exterior)
        lengths = np.hypot(*np.diff(ring, axis=0).T)
        k = int(np.argmax(lengths))
        edge = shapely.LineString(ring[k:k + 2])
        strip = shapely.intersection(geoms[a], shapely.buffer(edge, 0.15, cap_style="flat"))
        if strip.geom_type != "Polygon":
            continue
        geoms[a] = shapely.difference(geoms[a], strip)
        sheet = int(frame.at[a, "SHBANDO"])
        extra.append({**frame.loc[a].drop("geometry").to_dict(), "SHTHUA": _next_number(frame, sheet) + len(extra),
                      "DIENTICH": round(strip.area, 0), "geometry": strip})
        planted.append({**_row("slivers", frame, [a], strip, "15 cm strip split off as its own parcel"),
                        "parcels": f"{sheet}/{extra[-1]['SHTHUA']}"})
        mark(a)

    # invalid rings: a zero-width spike 3 m into the parcel at the middle of an edge
    for a in order:
        if sum(p["problem"] == "invalid" for p in planted) == PLAN["invalid"]:
            break
        if not land[a] or area[a] < 3000 or not free([a]) or geoms[a].geom_type != "Polygon":
            continue
        ring = shapely.get_coordinates(geoms[a].exterior)
        p, q = ring[0], ring[1]
        mid = (p + q) / 2
        normal = np.array([-(q - p)[1], (q - p)[0]]) / np.hypot(*(q - p))
        inward = normal if geoms[a].contains(shapely.Point(*(mid + normal))) else -normal
        spiked = np.vstack([ring[:1], [mid, mid + 3.0 * inward, mid], ring[1:]])
        geoms[a] = shapely.Polygon(spiked)
        planted.append(_row("invalid", frame, [a], geoms[a], "ring with a zero-width spike (self-intersection)"))
        mark(a)

    # duplicate: a parcel copied under another number
    for a in order:
        if sum(p["problem"] == "duplicates" for p in planted) == PLAN["duplicates"]:
            break
        if not land[a] or not free([a]):
            continue
        sheet = int(frame.at[a, "SHBANDO"])
        extra.append({**frame.loc[a].drop("geometry").to_dict(), "SHTHUA": _next_number(frame, sheet) + len(extra),
                      "geometry": geoms[a]})
        row = _row("duplicates", frame, [a], geoms[a], "parcel copied under another number")
        planted.append({**row, "parcels": f"{row['parcels']} & {sheet}/{extra[-1]['SHTHUA']}"})
        mark(a)

    frame = frame.set_geometry(list(geoms), crs=frame.crs)
    if extra:
        frame = pd.concat([frame, gpd.GeoDataFrame(extra, geometry="geometry", crs=frame.crs)], ignore_index=True)
    return frame, pd.DataFrame(planted)
