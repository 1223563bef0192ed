"""Package: one GeoPackage that opens styled in QGIS (:mod:`.gpkg`, styles
from :mod:`.styles`), a QGIS project next to it (:mod:`.project`), and
Cloud-Optimized GeoTIFFs of current use (:mod:`.raster`)."""

from .gpkg import GpkgLayer, collect_layers
from .raster import raster_area_by_code
from .stage import run_package

__all__ = ["GpkgLayer", "collect_layers", "raster_area_by_code", "run_package"]
