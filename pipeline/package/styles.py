"""QGIS styles (QML) and OGC SLD for the GeoPackage layers, generated from the
official colour table — never drawn by hand, so they always agree with the maps.

- land-use layers (khoanh_dat, thua_dat): categorised by ``landuse`` with the
  official colours (hatched codes get a line-pattern layer), code labels;
- QA layers: alarm styles (red/orange/magenta outlines and fills);
- boundaries: dashed outlines of increasing weight, no fill.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from ..io import write_text
from ..reference import landuse_tree
from ..symbology import BOUNDARY_STYLES, QA_COLOURS, REVIEW_COLOURS, legend_for, rgba, rgba_to_hex
from .fields import fields_xml

QGIS_VERSION = "3.22.16-Białowieża"
HATCH_BRUSH = {"||": "vertical", "//": "b_diagonal", "++": "cross", "xx": "diagonal_x"}


def _options(values: dict[str, str]) -> str:
    items = "".join(f'<Option type="QString" name={quoteattr(k)} value={quoteattr(v)}/>' for k, v in values.items())
    return f'<Option type="Map">{items}</Option>'


def _fill_layer(colour: str, outline: str = "110,110,110,255", width: str = "0.1", style: str = "solid",
                outline_style: str = "solid") -> str:
    return ('<layer class="SimpleFill" enabled="1" pass="0" locked="0">' + _options({
        "color": colour, "style": style, "outline_color": outline, "outline_style": outline_style,
        "outline_width": width, "outline_width_unit": "MM", "joinstyle": "bevel", "offset": "0,0",
        "offset_unit": "MM", "border_width_map_unit_scale": "3x:0,0,0,0,0,0",
    }) + "</layer>")


def _symbol(name: str, layers: list[str]) -> str:
    return (f'<symbol type="fill" name={quoteattr(name)} alpha="1" clip_to_extent="1" force_rhr="0">'
            + "".join(layers) + "</symbol>")


def _labeling(field: str, size: float = 7) -> str:
    return (
        '<labeling type="simple"><settings calloutType="simple">'
        f'<text-style fieldName={quoteattr(field)} isExpression="0" fontFamily="DejaVu Sans" fontSize="{size}" '
        'fontSizeUnit="Point" textColor="30,30,30,255" textOpacity="1" fontWeight="50" namedStyle="Regular" '
        'multilineHeight="1" allowHtml="0" capitalization="0" fontItalic="0" fontUnderline="0" fontStrikeout="0" '
        'blendMode="0" previewBkgrdColor="255,255,255,255" fontKerning="1" fontWordSpacing="0" '
        'fontLetterSpacing="0" textOrientation="horizontal" useSubstitutions="0" fieldName2="">'
        '<text-buffer bufferDraw="1" bufferSize="0.6" bufferSizeUnits="MM" bufferColor="255,255,255,200" '
        'bufferOpacity="1" bufferNoFill="1" bufferJoinStyle="128" bufferBlendMode="0"/>'
        '</text-style>'
        '<placement placement="1" centroidInside="1" centroidWhole="0" fitInPolygonOnly="1" priority="5" '
        'overrunDistance="0" dist="0" offsetType="0" quadOffset="4" xOffset="0" yOffset="0" '
        'repeatDistance="0" placementFlags="10" layerType="PolygonGeometry"/>'
        '<rendering obstacle="1" scaleVisibility="1" scaleMin="0" scaleMax="25000" displayAll="0" '
        'limitNumLabels="0" maxNumLabels="2000" mergeLines="0" minFeatureSize="0" upsidedownLabels="0" '
        'labelPerPart="0" drawLabels="1" fontLimitPixelSize="0" fontMinPixelSize="3" fontMaxPixelSize="10000" '
        'obstacleFactor="1" obstacleType="1" zIndex="0"/>'
        '</settings></labeling>'
    )


def _wrap(body: str, labels: bool) -> str:
    return (f'<!DOCTYPE qgis PUBLIC \'http://mrcc.com/qgis.dtd\' \'SYSTEM\'>\n'
            f'<qgis version={quoteattr(QGIS_VERSION)} styleCategories="AllStyleCategories" '
            f'labelsEnabled="{int(labels)}" hasScaleBasedVisibilityFlag="0">\n{body}\n</qgis>\n')


def renderer_landuse(codes: list[str]) -> str:
    """The categorised renderer of a land-use layer (used in QML and in the project)."""
    legend = legend_for(set(codes))
    tree = landuse_tree()
    categories, symbols = [], []
    for k, row in enumerate(legend.itertuples()):
        label = f"{row.code} - {tree.name(row.code)}"
        categories.append(f'<category symbol="{k}" value={quoteattr(row.code)} label={quoteattr(label)} '
                          'render="true"/>')
        layers = [_fill_layer(rgba(row.hex))]
        if row.hatch:
            layers.append(_fill_layer("0,0,0,255", outline="0,0,0,0", width="0",
                                      style=HATCH_BRUSH.get(row.hatch, "vertical"), outline_style="no"))
        symbols.append(_symbol(str(k), layers))
    default = len(legend)
    categories.append(f'<category symbol="{default}" value="" label="Chưa xác định (khoảng hở)" render="true"/>')
    symbols.append(_symbol(str(default), [_fill_layer("255,255,255,255", outline="220,0,0,255", width="0.3"),
                                         _fill_layer("220,0,0,255", outline="0,0,0,0", width="0",
                                                     style="diagonal_x", outline_style="no")]))
    return ('<renderer-v2 type="categorizedSymbol" attr="landuse" forceraster="0" symbollevels="0" '
            'enableorderby="0" referencescale="-1">'
            f'<categories>{"".join(categories)}</categories><symbols>{"".join(symbols)}</symbols>'
            '<rotation/><sizescale/></renderer-v2>')


def renderer_single(colour: str, outline: str, width: str, outline_style: str = "solid",
                    style: str = "solid") -> str:
    return ('<renderer-v2 type="singleSymbol" forceraster="0" symbollevels="0" enableorderby="0" '
            'referencescale="-1"><symbols>'
            + _symbol("0", [_fill_layer(colour, outline, width, style, outline_style)])
            + '</symbols><rotation/><sizescale/></renderer-v2>')


@dataclass(frozen=True)
class LayerStyle:
    """A layer's QGIS style: the renderer (and labels) and how its fields show (:mod:`.fields`) as QML, plus SLD."""

    layer: str
    renderer: str
    labeling: str = ""
    sld: str = ""
    description: str = ""
    fields: str = ""

    @property
    def qml(self) -> str:
        return _wrap(self.renderer + self.labeling + self.fields, bool(self.labeling))

    def with_fields(self, fields) -> LayerStyle:
        """The same style showing ``fields`` in Vietnamese."""
        return replace(self, fields=fields_xml(fields))


def landuse_style(layer: str, codes: list[str], description: str) -> LayerStyle:
    return LayerStyle(layer, renderer_landuse(codes), _labeling("landuse"), landuse_sld(layer, codes), description)


def boundary_style(layer: str, level: str, description: str) -> LayerStyle:
    colour, width, _ = BOUNDARY_STYLES[level]
    outline = rgba(colour)
    return LayerStyle(layer, renderer_single("0,0,0,0", outline, f"{width}", "dash dot", style="no"),
                      sld=_sld(layer, [("", "", None, colour, width, True)]), description=description)


def review_style(layer: str, description: str) -> LayerStyle:
    """The parcels to review, coloured by what is to be checked (``status``), labelled by number."""
    categories, symbols = [], []
    for k, (status, (fill, outline)) in enumerate(REVIEW_COLOURS.items()):
        categories.append(f'<category symbol="{k}" value={quoteattr(status)} label={quoteattr(status)} '
                          'render="true"/>')
        symbols.append(_symbol(str(k), [_fill_layer(fill, outline, "0.5")]))
    renderer = ('<renderer-v2 type="categorizedSymbol" attr="status" forceraster="0" symbollevels="0" '
                'enableorderby="0" referencescale="-1">'
                f'<categories>{"".join(categories)}</categories><symbols>{"".join(symbols)}</symbols>'
                '<rotation/><sizescale/></renderer-v2>')
    sld = _sld(layer, [(status, status, rgba_to_hex(fill), rgba_to_hex(outline), 0.5, False)
                       for status, (fill, outline) in REVIEW_COLOURS.items()], attribute="status")
    return LayerStyle(layer, renderer, _labeling("parcel_no", 7), sld, description)


def qa_style(layer: str, kind: str, description: str, label: str = "parcels") -> LayerStyle:
    """A QA layer: one colour (:data:`~pipeline.symbology.QA_COLOURS`), labelled by ``label``."""
    fill, outline = QA_COLOURS[kind]
    return LayerStyle(layer, renderer_single(fill, outline, "0.6"), _labeling(label, 7),
                      _sld(layer, [("", "", rgba_to_hex(fill), rgba_to_hex(outline), 0.6, False)]),
                      description)


# ----------------------------------------------------------------------- SLD


def _sld(layer: str, rules: list[tuple[str, str, str | None, str, float, bool]], attribute: str = "landuse") -> str:
    """SLD 1.1 with one rule per (value of ``attribute``, title, fill, stroke, width mm, dashed)."""
    body = []
    for code, title, fill, stroke, width, dashed in rules:
        flt = (f'<ogc:Filter><ogc:PropertyIsEqualTo><ogc:PropertyName>{attribute}</ogc:PropertyName>'
               f'<ogc:Literal>{escape(code)}</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Filter>') if code else ""
        fill_xml = (f'<se:Fill><se:SvgParameter name="fill">{fill}</se:SvgParameter></se:Fill>' if fill else "")
        dash = '<se:SvgParameter name="stroke-dasharray">7 2 1 2</se:SvgParameter>' if dashed else ""
        body.append(
            f'<se:Rule><se:Name>{escape(code or layer)}</se:Name><se:Description><se:Title>{escape(title or layer)}'
            f'</se:Title></se:Description>{flt}<se:PolygonSymbolizer>{fill_xml}<se:Stroke>'
            f'<se:SvgParameter name="stroke">{stroke}</se:SvgParameter>'
            f'<se:SvgParameter name="stroke-width">{width * 3.78:.2f}</se:SvgParameter>{dash}'
            '</se:Stroke></se:PolygonSymbolizer></se:Rule>')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<StyledLayerDescriptor version="1.1.0" '
            'xmlns="http://www.opengis.net/sld" xmlns:se="http://www.opengis.net/se" '
            'xmlns:ogc="http://www.opengis.net/ogc" xmlns:xlink="http://www.w3.org/1999/xlink" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:schemaLocation="http://www.opengis.net/sld http://schemas.opengis.net/sld/1.1.0/'
            'StyledLayerDescriptor.xsd"><NamedLayer>'
            f'<se:Name>{escape(layer)}</se:Name><UserStyle><se:Name>{escape(layer)}</se:Name>'
            f'<se:FeatureTypeStyle>{"".join(body)}</se:FeatureTypeStyle></UserStyle></NamedLayer>'
            '</StyledLayerDescriptor>\n')


def landuse_sld(layer: str, codes: list[str]) -> str:
    legend = legend_for(set(codes))
    return _sld(layer, [(r.code, f"{r.code} - {r.name_vi}", r.hex, "#6E6E6E", 0.1, False)
                        for r in legend.itertuples()])


def write_style_files(folder: Path, styles: list[LayerStyle]) -> list[Path]:
    """The same QML and SLD as files (``styles/``), for reuse in other projects."""
    written = []
    for style in styles:
        written.append(write_text(folder / f"{style.layer}.qml", style.qml))
        written.append(write_text(folder / f"{style.layer}.sld", style.sld))
    return written
