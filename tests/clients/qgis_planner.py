"""What a planner does in QGIS with kiemke's package (run with the system
python3 that has python3-qgis), and what QGIS then sees, as JSON.

Usage: python3 qgis_planner.py work PROJECT.qgz GEOPACKAGE.gpkg
         open the project, save a style of khoanh_dat into the GeoPackage as its
         default, write a layer of one's own into the GeoPackage, add it to the
         project and save the project
       python3 qgis_planner.py open PROJECT.qgz
         the project's layers: name, source and validity
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsCoordinateTransformContext,
    QgsFeature,
    QgsGeometry,
    QgsProject,
    QgsVectorFileWriter,
    QgsVectorLayer,
)


def work(project, gpkg):
    khoanh = next(layer for layer in project.mapLayers().values() if layer.source().endswith("layername=khoanh_dat"))
    saved = khoanh.saveStyleToDatabase("phuong_an_quy_hoach", "Kiểu của tổ quy hoạch", True, "")
    own = QgsVectorLayer(f"Polygon?crs={khoanh.crs().authid()}&field=ten:string", "vung_quy_hoach", "memory")
    feature, extent = QgsFeature(own.fields()), khoanh.extent()
    feature.setGeometry(QgsGeometry.fromRect(extent.buffered(-extent.width() / 3)))
    feature.setAttributes(["Khu công nghiệp dự kiến"])
    own.dataProvider().addFeatures([feature])
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName, options.layerName = "GPKG", "vung_quy_hoach"
    options.actionOnExistingFile = QgsVectorFileWriter.CreateOrOverwriteLayer
    written = QgsVectorFileWriter.writeAsVectorFormatV3(own, gpkg, QgsCoordinateTransformContext(), options)
    project.addMapLayer(QgsVectorLayer(f"{gpkg}|layername=vung_quy_hoach", "Vùng quy hoạch", "ogr"))
    return {"style_error": saved, "layer_written": written[0] == QgsVectorFileWriter.NoError,
            "project_saved": project.write()}


def main() -> None:
    app = QgsApplication([], False)
    app.initQgis()
    project = QgsProject.instance()
    out = {"read": project.read(sys.argv[2])}
    if sys.argv[1] == "work":
        out |= work(project, sys.argv[3])
    out["layers"] = {layer.name(): {"source": layer.source(), "valid": layer.isValid()}
                     for layer in project.mapLayers().values()}
    project.clear()
    print(json.dumps(out, ensure_ascii=False))
    app.exitQgis()


if __name__ == "__main__":
    main()
