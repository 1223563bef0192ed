"""Print layouts of the QGIS project, one per level (xã, huyện, tỉnh): an A0
landscape page (it fits a 44-inch roll) with the map, the title, the legend
of what the map shows, a scale bar, the north arrow and the CRS note. The
commune and district layouts are atlases over the boundary layers, so a
planner prints every unit from QGIS; the province layout shows the whole
province. Written as QGIS 3.22 layout XML; QGIS fills every unset property
with its default."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

PAGE_MM = (1189.0, 841.0)  # A0 landscape
MAP_BOX = (10.0, 40.0, 900.0, 760.0)  # x, y, w, h on the page (mm, from the top left)
FONT = "DejaVu Sans"


@dataclass(frozen=True)
class LayoutSpec:
    """One print layout: its name, title, what the atlas runs over (or the fixed extent)."""

    name: str
    title: str
    unit_expression: str  # a QGIS expression for the unit line ('Xã ' || "commune_name" …)
    coverage: tuple[str, str, str] | None  # (layer id, layer name, source) of the atlas, None: fixed extent
    extent: tuple[float, float, float, float]
    crs_note: str
    file_stem: str = "ban_do"


def _uid() -> str:
    return "{" + str(uuid.uuid4()) + "}"


def _font(size: int, bold: bool = False) -> str:
    return f"{FONT},{size},-1,5,{75 if bold else 50},0,0,0,0,0"


def _item(kind: int, position: tuple[float, float], size: tuple[float, float], z: int, attrs: str = "",
          children: str = "", item_id: str = "") -> str:
    uid = _uid()
    return (f'<LayoutItem type="{kind}" id={quoteattr(item_id)} uuid="{uid}" templateUuid="{uid}" '
            f'position="{position[0]},{position[1]},mm" positionOnPage="{position[0]},{position[1]},mm" '
            f'size="{size[0]},{size[1]},mm" zValue="{z}" visibility="1" opacity="1" referencePoint="0" '
            f'itemRotation="0" blendMode="0" excludeFromExports="0" {attrs}>'
            f'<LayoutObject><dataDefinedProperties><Option type="Map"><Option type="QString" name="name" value=""/>'
            '<Option name="properties"/><Option type="QString" name="type" value="collection"/></Option>'
            f'</dataDefinedProperties><customproperties/></LayoutObject>{children}</LayoutItem>')


def _label(text: str, position, size, z: int, points: int, bold: bool, halign: int = 4) -> str:
    """A label (``text`` may hold [% expressions %]); halign 1 left, 4 centre, 2 right."""
    return _item(65641, position, size, z,
                 f'labelText={quoteattr(text)} halign="{halign}" valign="128" marginX="0" marginY="0" '
                 'htmlState="0" frame="false" background="false"',
                 f'<LabelFont description="{_font(points, bold)}" style=""/>'
                 '<FontColor red="0" green="0" blue="0" alpha="255"/>')


def layout_xml(spec: LayoutSpec) -> str:
    """One <Layout> element."""
    page_w, page_h = PAGE_MM
    mx, my, mw, mh = MAP_BOX
    x0, y0, x1, y1 = spec.extent
    page_uid = _uid()
    page = (f'<PageCollection><LayoutItem type="65638" uuid="{page_uid}" templateUuid="{page_uid}" '
            f'size="{page_w},{page_h},mm" position="0,0,mm" positionOnPage="0,0,mm" zValue="0" visibility="1" '
            'opacity="1" frame="false" background="true"/></PageCollection>')
    map_uid = _uid()
    atlas_map = '<AtlasMap atlasDriven="1" scalingMode="2" margin="0.05"/>' if spec.coverage else ""
    map_item = (f'<LayoutItem type="65639" id="ban_do" uuid="{map_uid}" templateUuid="{map_uid}" '
                f'position="{mx},{my},mm" positionOnPage="{mx},{my},mm" size="{mw},{mh},mm" zValue="1" '
                'visibility="1" opacity="1" frame="true" background="true" keepLayerSet="false" '
                'drawCanvasItems="true" mapRotation="0" followPreset="false" referencePoint="0">'
                f'<FrameColor red="0" green="0" blue="0" alpha="255"/>'
                f'<Extent xmin="{x0}" ymin="{y0}" xmax="{x1}" ymax="{y1}"/><LayerSet/>{atlas_map}</LayoutItem>')
    side = mx + mw + 15
    items = [
        map_item,
        _label(spec.title, (mx, 8), (mw, 16), 2, 36, True),
        _label(spec.unit_expression, (mx, 24), (mw, 12), 2, 22, True),
        _label("CHÚ DẪN", (side, my), (page_w - side - 10, 12), 2, 20, True),
        _item(65642, (side, my + 14), (page_w - side - 10, mh - 14), 3,
              f'map_uuid="{map_uid}" legendFilterByMap="1" resizeToContents="0" title="" columnCount="1" '
              'symbolWidth="12" symbolHeight="6" frame="false" background="true"',
              # QGIS's own spacing (a style read without margins has none: titles on the entries above them)
              f'<styles><style name="symbolLabel" marginTop="2" marginLeft="2">'
              f'<styleFont description="{_font(14)}" style=""/></style>'
              f'<style name="subgroup" marginTop="3"><styleFont description="{_font(15, True)}" style=""/></style>'
              f'<style name="group" marginTop="3"><styleFont description="{_font(16, True)}" style=""/></style>'
              '</styles>',
              "chu_dan"),
        _item(65646, (mx + mw / 2 - 100, my + mh + 6), (200, 16), 4,
              f'mapUuid="{map_uid}" style="Single Box" units="meters" unitType="meters" unitLabel="m" '
              'numSegments="4" numSegmentsLeft="0" segmentSizeMode="1" minBarWidth="120" maxBarWidth="200" '
              'height="3" frame="false" background="false"', f'<scaleBarFont description="{_font(12)}" style=""/>',
              item_id="thuoc_ty_le"),
        # thousands written the Vietnamese way (1:6.380) whatever QGIS's locale
        _label("[% 'TỶ LỆ 1:' || replace(format_number(map_get(item_variables('ban_do'), 'map_scale'), 0), "
               "',', '.') %]",
               (mx + mw / 2 - 100, my + mh + 24), (200, 10), 4, 18, True),
        _item(65640, (mx + mw - 30, my + 8), (20, 26), 5,
              'file=":/images/north_arrows/layout_default_north_arrow.svg" mode="2" resizeMode="0" '
              f'northMode="0" northOffset="0" mapUuid="{map_uid}" frame="false" background="false"',
              item_id="mui_ten_bac"),
        _label(spec.crs_note, (mx, my + mh + 8), (300, 8), 4, 12, False, halign=1),
    ]
    atlas = ""
    if spec.coverage:
        layer_id, layer_name, source = spec.coverage
        pattern = f"'{spec.file_stem}_' || @atlas_featurenumber"  # an expression: the PDF of each unit
        atlas = (f'<Atlas enabled="1" coverageLayer={quoteattr(layer_id)} coverageLayerName={quoteattr(layer_name)} '
                 f'coverageLayerSource={quoteattr(source)} coverageLayerProvider="ogr" hideCoverage="0" '
                 'filterFeatures="0" sortFeatures="0" '
                 f'filenamePattern={quoteattr(pattern)} '
                 'pageNameExpression=""/>')
    return (f'<Layout name={quoteattr(spec.name)} units="mm" printResolution="300" worldFileMap="">'
            f'{page}{"".join(items)}{atlas}</Layout>')


def layouts_xml(specs: list[LayoutSpec]) -> str:
    return f'<Layouts>{"".join(layout_xml(s) for s in specs)}</Layouts>'
