"""A QGIS project (.qgs XML) referencing GeoPackage layers by relative path,
styled, in the province CRS: what a planner double-clicks."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from ..io import atomic_path
from .fields import fields_xml
from .gpkg import OUTLINE_LAYER, GpkgLayer
from .layouts import LayoutSpec, layouts_xml
from .styles import QGIS_VERSION


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


def _extent(bounds: tuple[float, float, float, float] | None) -> str:
    if bounds is None:  # a layer without rows
        return ""
    x0, y0, x1, y1 = bounds
    return f"<extent><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></extent>"


#: The project's layer groups, top of the drawing order first, and which layers go in each.
GROUPS = (
    ("Kiểm tra QA", ("qa_", "review"), False),
    ("Ranh giới", ("ranh_gioi_", "pham_vi_"), True),
    ("Biến động", ("bien_dong",), True),
    ("Hiện trạng", ("khoanh_dat", "thua_dat"), True),
    ("Bảng diện tích", ("dien_tich_", "chu_chuyen"), True),
)
SWITCHED_OFF = ("thua_dat", "review")  # present, but not drawn until the planner asks


def group_of(layer: GpkgLayer) -> str:
    """The group a layer goes in: its own, or the one its name's prefix gives."""
    return layer.group or next(title for title, prefixes, _ in GROUPS if layer.name.startswith(prefixes))


def _groups(layers: list[GpkgLayer]) -> list[tuple[str, bool]]:
    """The groups of the project in order (titles, switched on); a layer's own
    group (the regrouped units) comes last among the maps, switched off."""
    own = list(dict.fromkeys(layer.group for layer in layers if layer.group))
    fixed = [(title, on) for title, _, on in GROUPS]
    return fixed[:-1] + [(title, False) for title in own] + fixed[-1:]


def _maplayer(layer: GpkgLayer, source: str, srs: str) -> str:
    """One <maplayer>: spatial with its style, or a table; the fields named in Vietnamese."""
    layer_id = f"{layer.name}_kiemke"
    fields = layer.style.fields if layer.style and layer.style.fields else fields_xml(layer.columns)
    if not layer.spatial:
        return ('<maplayer type="vector" geometry="No geometry" wkbType="NoGeometry" readOnly="0">'
                f'<id>{escape(layer_id)}</id><datasource>{escape(source)}</datasource>'
                f'<layername>{escape(layer.title)}</layername><provider encoding="UTF-8">ogr</provider>'
                f'{fields}</maplayer>')
    renderer = layer.style.renderer if layer.style else ""
    labeling = layer.style.labeling if layer.style else ""
    return (f'<maplayer type="vector" geometry="Polygon" wkbType="MultiPolygon" labelsEnabled="{int(bool(labeling))}" '
            'hasScaleBasedVisibilityFlag="0" minScale="100000000" maxScale="0" simplifyDrawingHints="1" '
            'simplifyMaxScale="1" simplifyLocal="1" simplifyAlgorithm="0" simplifyDrawingTol="1" readOnly="0" '
            'styleCategories="AllStyleCategories">'
            f'{_extent(layer.bounds)}<id>{escape(layer_id)}</id><datasource>{escape(source)}</datasource>'
            f'<layername>{escape(layer.title)}</layername><srs>{srs}</srs>'
            '<provider encoding="UTF-8">ogr</provider>'
            f'{renderer}{labeling}{fields}<blendMode>0</blendMode><featureBlendMode>0</featureBlendMode>'
            '<layerOpacity>1</layerOpacity></maplayer>')


def _tree(layers: list[GpkgLayer], gpkg_name: str) -> str:
    """The layer tree: the groups in order, the QA group and some layers switched off."""
    groups = []
    for title, on in _groups(layers):
        members = [layer for layer in layers if group_of(layer) == title]
        if not members:
            continue
        nodes = []
        for layer in members:
            checked = "Qt::Unchecked" if layer.name in SWITCHED_OFF or not on else "Qt::Checked"
            nodes.append(f'<layer-tree-layer expanded="0" checked="{checked}" id="{layer.name}_kiemke" '
                         f'name={quoteattr(layer.title)} source={quoteattr(f"./{gpkg_name}|layername={layer.name}")} '
                         'providerKey="ogr"><customproperties/></layer-tree-layer>')
        groups.append(f'<layer-tree-group name={quoteattr(title)} checked="{"Qt::Checked" if on else "Qt::Unchecked"}" '
                      f'expanded="1"><customproperties/>{"".join(nodes)}</layer-tree-group>')
    return "".join(groups)


def project_xml(gpkg_name: str, layers: list[GpkgLayer], crs, title: str, layouts: str = "") -> str:
    """The project XML; ``layers`` in drawing order (top first); ``layouts`` a <Layouts> element."""
    srs = spatialrefsys(crs)
    ordered = [layer for group, _ in _groups(layers) for layer in layers if group_of(layer) == group]
    spatial = [layer for layer in ordered if layer.spatial]
    all_bounds = [layer.bounds for layer in spatial if layer.bounds is not None]
    x0 = min(b[0] for b in all_bounds)
    y0 = min(b[1] for b in all_bounds)
    x1 = max(b[2] for b in all_bounds)
    y1 = max(b[3] for b in all_bounds)
    maplayers = [_maplayer(layer, f"./{gpkg_name}|layername={layer.name}", srs) for layer in ordered]
    order = [f'<layer id="{layer.name}_kiemke"/>' for layer in spatial]
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        f'<qgis projectname={quoteattr(title)} version={quoteattr(QGIS_VERSION)}>'
        f'<homePath path=""/><title>{escape(title)}</title>'
        '<autotransaction active="0"/><evaluateDefaultValues active="0"/><trust active="0"/>'
        f'<projectCrs>{srs}</projectCrs>'
        f'<layer-tree-group><customproperties/>{_tree(ordered, gpkg_name)}</layer-tree-group>'
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
        f'{layouts}'
        '</qgis>\n'
    )


def print_layouts(layers: list[GpkgLayer], gpkg_name: str, title: str, crs_note: str) -> str:
    """One print layout per level: atlases over the commune and district
    boundaries, the whole province. Without a boundary file the communes'
    atlas runs over their extents (``pham_vi_xa``), there is no district
    layout, and the province's frames every khoanh."""
    by_name = {layer.name: layer for layer in layers}
    if "ranh_gioi_xa" not in by_name and OUTLINE_LAYER in by_name:
        by_name["ranh_gioi_xa"] = by_name[OUTLINE_LAYER]
    specs = []
    for level, layer_name, unit in (("xã", "ranh_gioi_xa", "upper(\"commune_name\")"),
                                    ("huyện", "ranh_gioi_huyen", "upper(\"district_name\")"),
                                    ("tỉnh", "ranh_gioi_tinh", "upper(\"ten\")")):
        if level == "huyện" and layer_name not in by_name:  # no district since 1 July 2025, or no boundaries
            continue
        coverage = by_name.get(layer_name) or by_name["khoanh_dat"]
        extent = coverage.bounds or (0.0, 0.0, 0.0, 0.0)  # no row: nothing to frame
        atlas = None if level == "tỉnh" else (f"{coverage.name}_kiemke", coverage.title,
                                                f"./{gpkg_name}|layername={coverage.name}")
        expression = f"[% {unit} %]" if layer_name in by_name else f"[% '{title.upper()}' %]"
        specs.append(LayoutSpec(f"Bản đồ hiện trạng sử dụng đất cấp {level}", title.upper(), expression, atlas,
                                extent, crs_note, file_stem=f"ban_do_{layer_name.removeprefix('ranh_gioi_')}"))
    return layouts_xml(specs)


def write_project(path: Path, gpkg: Path, layers: list[GpkgLayer], crs, title: str, map_title: str,
                  crs_note: str) -> Path:
    """The .qgz: a zipped .qgs referencing the GeoPackage by a relative path,
    its layers in groups, the area tables loaded, a print layout per level."""
    xml = project_xml(gpkg.name, layers, crs, title, print_layouts(layers, gpkg.name, map_title, crs_note))
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(path.with_suffix(".qgs").name, xml)
    return path
