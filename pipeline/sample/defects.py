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


class Planter:
    """Plants problems into a commune's parcels, one kind after the other, each
    where nothing else was touched (a planted parcel and its neighbours within
    30 m are used up)."""

    def __init__(self, frame: gpd.GeoDataFrame, polygon, rng: np.random.Generator):
        self.frame = frame.copy()
        self.polygon = polygon
        self.rng = rng
        self.geoms = np.asarray(self.frame.geometry.values, dtype=object)
        self.tree = shapely.STRtree(self.geoms)
        self.land = self.frame["KHLOAIDAT"].isin(["RST", "RSN", "LUK", "LUC", "CLN", "BHK"]).to_numpy()
        self.area = shapely.area(self.geoms)
        self.order = rng.permutation(len(self.frame))
        self.used: set[int] = set()
        self.planted: list[dict] = []
        self.extra: list[dict] = []

    def free(self, indices) -> bool:
        return not (set(map(int, indices)) & self.used)

    def mark(self, *indices) -> None:
        self.used.update(int(i) for i in indices)
        for i in indices:  # keep the neighbours of a planted problem out of other plants
            self.used.update(int(j) for j in _neighbours(self.geoms, self.tree, shapely.buffer(self.geoms[i], 30.0)))

    def count(self, kind: str) -> int:
        return sum(p["problem"] == kind for p in self.planted)

    def candidates(self, kind: str, wanted: int, min_area: float, polygon_only: bool = False):
        """Free land parcels of at least ``min_area`` m², in the random order, until ``wanted`` are planted."""
        for a in self.order:
            if self.count(kind) == wanted:
                return
            if not self.land[a] or self.area[a] < min_area or not self.free([a]):
                continue
            if polygon_only and self.geoms[a].geom_type != "Polygon":
                continue
            yield a

    def split_off(self, a: int, geometry, **values) -> int:
        """A new record copied from parcel ``a`` with ``geometry``; returns its number."""
        sheet = int(self.frame.at[a, "SHBANDO"])
        number = _next_number(self.frame, sheet) + len(self.extra)
        self.extra.append({**self.frame.loc[a].drop("geometry").to_dict(), "SHTHUA": number, **values,
                           "geometry": geometry})
        return number

    def overlaps(self) -> None:
        """A takes a half-disc (r = 4 m) of its neighbour B at the middle of their shared edge."""
        geoms, tree = self.geoms, self.tree
        for a in self.candidates("overlaps", PLAN["overlaps"], 2000):
            for b in _neighbours(geoms, tree, geoms[a]):
                shared = shapely.intersection(geoms[a].boundary, geoms[b].boundary)
                if b == a or not self.land[b] or shapely.length(shared) < 40 or not self.free([b]):
                    continue
                disc = shapely.buffer(shapely.line_interpolate_point(shapely.line_merge(shared), 0.5,
                                                                     normalized=True), 4.0)
                if set(_neighbours(geoms, tree, disc)) != {a, b}:
                    continue
                bite = shapely.intersection(disc, geoms[b])
                geoms[a] = shapely.union(geoms[a], bite)
                self.planted.append(_row("overlaps", self.frame, [a, b], bite, "parcel grown 4 m into its neighbour"))
                self.mark(a, b)
                break

    def gaps_inside(self) -> None:
        """A 6 × 6 m square cut out of the middle of a large parcel."""
        for a in self.candidates("gaps", PLAN["gaps_inside"], 20_000):
            centre = shapely.point_on_surface(shapely.buffer(self.geoms[a], -20.0))
            if centre.is_empty:
                continue
            square = shapely.buffer(centre, 3.0, cap_style="square")
            self.geoms[a] = shapely.difference(self.geoms[a], square)
            self.planted.append(_row("gaps", self.frame, [a], square, "6 × 6 m hole: no parcel covers it"))
            self.mark(a)

    def at_the_boundary(self, kind: str, count: int) -> None:
        """A boundary gap or a crossing, at a commune-boundary vertex touched by one parcel only."""
        vertices = shapely.points(shapely.get_coordinates(self.polygon.exterior))
        done = 0
        for v in self.rng.permutation(len(vertices)):
            if done == count:
                break
            disc = shapely.buffer(vertices[v], 5.0)
            hits = _neighbours(self.geoms, self.tree, disc)
            if len(hits) != 1 or not self.free(hits) or not self.land[hits[0]]:
                continue
            a = int(hits[0])
            if kind == "gaps":
                piece = shapely.intersection(disc, self.polygon)
                self.geoms[a] = shapely.difference(self.geoms[a], disc)
                detail = "disc cut off at the commune boundary: commune area with no parcel"
            else:
                piece = shapely.difference(disc, self.polygon)
                self.geoms[a] = shapely.union(self.geoms[a], piece)
                detail = "parcel drawn 5 m beyond the commune boundary"
            self.planted.append(_row(kind, self.frame, [a], piece, detail))
            self.mark(a)
            done += 1

    def slivers(self) -> None:
        """A 15 cm strip along the longest edge split off as its own parcel."""
        for a in self.candidates("slivers", PLAN["slivers"], 3000, polygon_only=True):
            ring = shapely.get_coordinates(self.geoms[a].exterior)
            lengths = np.hypot(*np.diff(ring, axis=0).T)
            k = int(np.argmax(lengths))
            edge = shapely.LineString(ring[k:k + 2])
            strip = shapely.intersection(self.geoms[a], shapely.buffer(edge, 0.15, cap_style="flat"))
            if strip.geom_type != "Polygon":
                continue
            self.geoms[a] = shapely.difference(self.geoms[a], strip)
            number = self.split_off(a, strip, DIENTICH=round(strip.area, 0))
            self.planted.append({**_row("slivers", self.frame, [a], strip, "15 cm strip split off as its own parcel"),
                                 "parcels": f"{int(self.frame.at[a, 'SHBANDO'])}/{number}"})
            self.mark(a)

    def invalid(self) -> None:
        """A zero-width spike 3 m into the parcel at the middle of an edge."""
        for a in self.candidates("invalid", PLAN["invalid"], 3000, polygon_only=True):
            ring = shapely.get_coordinates(self.geoms[a].exterior)
            p, q = ring[0], ring[1]
            mid = (p + q) / 2
            normal = np.array([-(q - p)[1], (q - p)[0]]) / np.hypot(*(q - p))
            inward = normal if self.geoms[a].contains(shapely.Point(*(mid + normal))) else -normal
            self.geoms[a] = shapely.Polygon(np.vstack([ring[:1], [mid, mid + 3.0 * inward, mid], ring[1:]]))
            self.planted.append(_row("invalid", self.frame, [a], self.geoms[a],
                                     "ring with a zero-width spike (self-intersection)"))
            self.mark(a)

    def duplicates(self) -> None:
        """A parcel copied under another number."""
        for a in self.candidates("duplicates", PLAN["duplicates"], 0):
            number = self.split_off(a, self.geoms[a])
            row = _row("duplicates", self.frame, [a], self.geoms[a], "parcel copied under another number")
            self.planted.append({**row, "parcels": f"{row['parcels']} & {int(self.frame.at[a, 'SHBANDO'])}/{number}"})
            self.mark(a)

    def result(self) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
        frame = self.frame.set_geometry(list(self.geoms), crs=self.frame.crs)
        if self.extra:
            frame = pd.concat([frame, gpd.GeoDataFrame(self.extra, geometry="geometry", crs=frame.crs)],
                              ignore_index=True)
        return frame, pd.DataFrame(self.planted)


def plant_problems(frame: gpd.GeoDataFrame, polygon, rng: np.random.Generator):
    """Return the frame with the planted problems, and the list of them."""
    planter = Planter(frame, polygon, rng)
    planter.overlaps()
    planter.gaps_inside()
    planter.at_the_boundary("gaps", PLAN["gaps_boundary"])
    planter.at_the_boundary("crossings", PLAN["crossings"])
    planter.slivers()
    planter.invalid()
    planter.duplicates()
    return planter.result()
