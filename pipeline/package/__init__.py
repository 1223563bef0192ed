"""Package: one GeoPackage that opens styled in QGIS (:mod:`.gpkg`, styles
from :mod:`.styles`), a QGIS project next to it (:mod:`.project`), and
Cloud-Optimized GeoTIFFs of current use (:mod:`.raster`)."""

from .ahead import discard_copies
from .gpkg import GpkgLayer, collect_layers
from .raster import raster_area_by_code
from .stage import copy_geopackage_ahead, run_package

__all__ = ["GpkgLayer", "collect_layers", "copy_geopackage_ahead", "discard_copies", "raster_area_by_code",
           "run_package"]
