"""Open kiemke's GeoPackage and QGIS project with QGIS's own Python API (run with
the system python3 that has python3-qgis) and print what QGIS sees, as JSON.

Usage: python3 qgis_check.py PROJECT.qgz GEOPACKAGE.gpkg OUT.png
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import QgsApplication, QgsMapRendererSequentialJob, QgsMapSettings, QgsProject, QgsVectorLayer  # noqa: E402
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402


def renderer_colours(layer):
    renderer = layer.renderer() if layer.isSpatial() else None
    if renderer is None:  # a table
        return None
    out = {"type": renderer.type()}
    if renderer.type() == "categorizedSymbol":
        out["attribute"] = renderer.classAttribute()
        out["colours"] = {str(c.value()): c.symbol().symbolLayer(0).color().name().upper()
                          for c in renderer.categories() if str(c.value())}
    return out


def shown_values(layer):
    """What QGIS shows (attribute table, identify) for each value of the coded fields (those with a value map)."""
    formatter = QgsApplication.fieldFormatterRegistry().fieldFormatter("ValueMap")
    fields = layer.fields()
    return {fields.at(i).name(): {str(value): formatter.representValue(layer, i, layer.editorWidgetSetup(i).config(),
                                                                       None, value)
                                  for value in layer.uniqueValues(i)}
            for i in range(fields.count()) if layer.editorWidgetSetup(i).type() == "ValueMap"}


def shown_numbers(layer):
    """What QGIS shows for the first feature's numbers given decimals (those with a range widget)."""
    formatter = QgsApplication.fieldFormatterRegistry().fieldFormatter("Range")
    feature = next(layer.getFeatures(), None)
    fields = layer.fields()
    return {fields.at(i).name(): formatter.representValue(layer, i, layer.editorWidgetSetup(i).config(), None,
                                                          feature[i])
            for i in range(fields.count()) if feature is not None and layer.editorWidgetSetup(i).type() == "Range"}


def project_structure(project, png_path):
    """The groups (visible?, layers), the drawing order, the field aliases, the
    tables, the print layouts, and the first atlas page of each exported to PDF."""
    from qgis.core import QgsLayerTreeGroup, QgsLayoutExporter, QgsLegendStyle

    root = project.layerTreeRoot()
    out = {"groups": {}, "order": [], "aliases": {}, "shown": {}, "tables": [], "layouts": {}}
    for node in root.children():
        if isinstance(node, QgsLayerTreeGroup):
            out["groups"][node.name()] = {
                "visible": node.isVisible(),
                "layers": {child.name(): child.isVisible() for child in node.findLayers()}}
    out["order"] = [node.name() for node in root.findLayers()]
    for layer in project.mapLayers().values():
        fields = layer.fields()
        out["aliases"][layer.name()] = {fields.at(i).name(): fields.at(i).alias() for i in range(fields.count())}
        out["shown"][layer.name()] = shown_values(layer) if layer.isValid() else {}
        if layer.isValid() and not layer.isSpatial():
            out["tables"].append({"name": layer.name(), "features": layer.featureCount()})
    for layout in project.layoutManager().printLayouts():
        atlas = layout.atlas()
        pdf = png_path.replace(".png", f"_{len(out['layouts'])}.pdf")
        info = {"atlas": atlas.enabled(), "items": sorted({type(i).__name__ for i in layout.items()})}
        scale_bar = next(i for i in layout.items() if type(i).__name__ == "QgsLayoutItemScaleBar")
        text = scale_bar.textFormat()
        info["scale_bar_font"] = [text.font().family(), text.size()]
        legend = next(i for i in layout.items() if type(i).__name__ == "QgsLayoutItemLegend")
        styles = {"group": QgsLegendStyle.Group, "subgroup": QgsLegendStyle.Subgroup,
                  "label": QgsLegendStyle.SymbolLabel}
        info["legend_margins"] = {name: [legend.style(s).margin(QgsLegendStyle.Top),
                                         legend.style(s).margin(QgsLegendStyle.Left)] for name, s in styles.items()}
        if atlas.enabled():
            atlas.beginRender()
            info["atlas_count"] = atlas.count()
            atlas.seekTo(0)
            atlas.refreshCurrentFeature()
        exporter = QgsLayoutExporter(layout)
        info["export"] = int(exporter.exportToPdf(pdf, QgsLayoutExporter.PdfExportSettings()))
        if atlas.enabled():
            atlas.endRender()
        page = layout.pageCollection().page(0).pageSize()
        info.update(pdf=pdf, page_mm=[page.width(), page.height()])
        out["layouts"][layout.name()] = info
    return out


def main(project_path, gpkg_path, png_path):
    app = QgsApplication([], False)
    app.initQgis()
    report = {"qgis": QgsApplication.version() if hasattr(QgsApplication, "version") else ""}
    try:
        from qgis.core import Qgis

        report["qgis"] = Qgis.version()
    except Exception:  # noqa: BLE001
        pass

    # every layer of the GeoPackage, loaded alone: valid, CRS, default style from layer_styles
    from osgeo import ogr

    ds = ogr.Open(gpkg_path)
    names = [ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())]
    report["gpkg_layers"] = {}
    for name in names:
        layer = QgsVectorLayer(f"{gpkg_path}|layername={name}", name, "ogr")
        info = {"valid": layer.isValid(), "features": layer.featureCount(),
                "shown": shown_values(layer) if layer.isValid() else {},
                "numbers": shown_numbers(layer) if layer.isValid() else {}}
        if layer.isSpatial():
            info["crs"] = layer.crs().authid()
            info["renderer"] = renderer_colours(layer)
        report["gpkg_layers"][name] = info

    project = QgsProject.instance()
    report["project_read"] = project.read(project_path)
    report["project_crs"] = project.crs().authid()
    layers = list(project.mapLayers().values())
    report["project_layers"] = {
        layer.name(): {"valid": layer.isValid(), "crs": layer.crs().authid(), "source": layer.source(),
                   "renderer": renderer_colours(layer) if layer.isValid() else None}
        for layer in layers
    }
    # render the project's land-use layers to a PNG
    root = project.layerTreeRoot()
    visible = [node.layer() for node in root.findLayers() if node.isVisible() and node.layer().isValid()]
    settings = QgsMapSettings()
    settings.setLayers(visible)
    settings.setDestinationCrs(project.crs())
    extent = None
    for layer in visible:
        extent = layer.extent() if extent is None else extent.combineExtentWith(layer.extent()) or extent
    khoanh = next((layer for layer in visible if "Khoanh" in layer.name()), visible[0])
    settings.setExtent(khoanh.extent())
    settings.setOutputSize(QSize(2400, 1800))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    report["render_saved"] = image.save(png_path, "PNG")
    report.update(project_structure(project, png_path))
    print(json.dumps(report, ensure_ascii=False), flush=True)
    os._exit(0)  # QgsApplication.exitQgis() can crash headless QGIS 3.22 at teardown; the report is out


if __name__ == "__main__":
    main(*sys.argv[1:4])
