"""A QGIS project (.qgs XML) referencing GeoPackage layers by relative path,
styled, in the province CRS: what a planner double-clicks."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pandas as pd
import shapely

from ..io import atomic_path
from .gpkg import GpkgLayer
from .styles import QGIS_VERSION, LayerStyle


def spatialrefsys(crs) -> str:
    """A QGIS <spatialrefsys> block for a pyproj CRS."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proj4 = crs.to_proj4()
    epsg = crs.to_epsg()
    authid = f"EPSG:{epsg}" if epsg else ""
    return (f'<spatialrefsys nativeFormat="Wkt"><wkt>{escape(crs.to_wkt("WKT2_2019"))}</wkt>'
            f'<proj4>{escape(proj4)}</proj4><srsid>0</srsid><srid>{epsg or 0}</srid>'
            f'<authid>{authid}</authid><description>{escape(crs.name)}</description>'
            '<projectionacronym>tmerc</projectionacronym><ellipsoidacronym>EPSG:7030</ellipsoidacronym>'
            '<geographicflag>false</geographicflag></spatialrefsys>')


def _extent(frame: pd.DataFrame) -> str:
    x0, y0, x1, y1 = shapely.total_bounds(frame.geometry.values)
    return f"<extent><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></extent>"


def project_xml(gpkg_name: str, layers: list[tuple[str, str, LayerStyle | None, pd.DataFrame]], crs,
                title: str) -> str:
    """The project XML; ``layers`` are (table, title, style, frame), top of the drawing order first."""
    srs = spatialrefsys(crs)
    tree, maplayers, order = [], [], []
    all_bounds = [shapely.total_bounds(f.geometry.values) for _, _, _, f in layers]
    x0 = min(b[0] for b in all_bounds)
    y0 = min(b[1] for b in all_bounds)
    x1 = max(b[2] for b in all_bounds)
    y1 = max(b[3] for b in all_bounds)
    for name, layer_title, style, frame in layers:
        layer_id = f"{name}_kiemke"
        source = f"./{gpkg_name}|layername={name}"
        checked = "Qt::Unchecked" if name in ("thua_dat", "review") else "Qt::Checked"
        tree.append(f'<layer-tree-layer expanded="0" checked="{checked}" id={quoteattr(layer_id)} '
                    f'name={quoteattr(layer_title)} source={quoteattr(source)} providerKey="ogr">'
                    '<customproperties/></layer-tree-layer>')
        renderer = style.renderer if style else ""
        labeling = style.labeling if style else ""
        maplayers.append(
            f'<maplayer type="vector" geometry="Polygon" wkbType="MultiPolygon" labelsEnabled="{int(bool(labeling))}" '
            'hasScaleBasedVisibilityFlag="0" minScale="100000000" maxScale="0" simplifyDrawingHints="1" '
            'simplifyMaxScale="1" simplifyLocal="1" simplifyAlgorithm="0" simplifyDrawingTol="1" readOnly="0" '
            'styleCategories="AllStyleCategories">'
            f'{_extent(frame)}<id>{escape(layer_id)}</id><datasource>{escape(source)}</datasource>'
            f'<layername>{escape(layer_title)}</layername><srs>{srs}</srs>'
            '<provider encoding="UTF-8">ogr</provider>'
            f'{renderer}{labeling}<blendMode>0</blendMode><featureBlendMode>0</featureBlendMode>'
            '<layerOpacity>1</layerOpacity></maplayer>')
        order.append(f'<layer id={quoteattr(layer_id)}/>')
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        f'<qgis projectname={quoteattr(title)} version={quoteattr(QGIS_VERSION)}>'
        f'<homePath path=""/><title>{escape(title)}</title>'
        '<autotransaction active="0"/><evaluateDefaultValues active="0"/><trust active="0"/>'
        f'<projectCrs>{srs}</projectCrs>'
        f'<layer-tree-group><customproperties/>{"".join(tree)}</layer-tree-group>'
        '<mapcanvas annotationsVisible="1" name="theMapCanvas"><units>meters</units>'
        f'<extent><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></extent>'
        f'<rotation>0</rotation><destinationsrs>{srs}</destinationsrs><rendermaptile>0</rendermaptile>'
        '</mapcanvas>'
        f'<projectlayers>{"".join(maplayers)}</projectlayers>'
        f'<layerorder>{"".join(order)}</layerorder>'
        '<properties><SpatialRefSys><ProjectionsEnabled type="int">1</ProjectionsEnabled></SpatialRefSys>'
        '<Paths><Absolute type="bool">false</Absolute></Paths>'
        '<Measurement><DistanceUnits type="QString">meters</DistanceUnits>'
        '<AreaUnits type="QString">m2</AreaUnits></Measurement></properties>'
        f'<ProjectViewSettings UseProjectScales="0" rotation="0"><Scales/>'
        f'<DefaultViewExtent xmin="{x0}" ymin="{y0}" xmax="{x1}" ymax="{y1}">{srs}</DefaultViewExtent>'
        '</ProjectViewSettings>'
        '</qgis>\n'
    )


def write_project(path: Path, gpkg: Path, layers: list[GpkgLayer], crs, title: str) -> Path:
    """The .qgz: a zipped .qgs referencing the GeoPackage by a relative path."""
    xml = project_xml(gpkg.name, [(layer.name, layer.title, layer.style, layer.frame) for layer in layers
                                  if layer.spatial], crs, title)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(path.with_suffix(".qgs").name, xml)
    return path
