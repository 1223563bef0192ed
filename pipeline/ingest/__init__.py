"""Ingest: commune parcel files as officers have them → the parcel contract in
the province's VN-2000 TM-3 CRS (``parcels/``, ``quarantine/``, reports).

- :mod:`.read` reads any OGR vector (Arrow where GDAL allows, DGN labels);
- :mod:`.text` decodes bytes and repairs TCVN3/VNI/cp1258 text;
- :mod:`.columns` finds the columns by meaning, :mod:`.codes` maps codes;
- :mod:`.core` maps one frame to the contract (pure), :mod:`.file` one file;
- :mod:`.cache`, :mod:`.assemble` and :mod:`.stage` make it incremental and parallel;
- :mod:`.report` writes what was done.
"""

from .core import INVALID_FLAG, ingest_frame
from .file import ingest_file
from .place import UNKNOWN_COMMUNE_PREFIX
from .report import FileReport, IngestResult
from .stage import run_ingest

__all__ = ["INVALID_FLAG", "UNKNOWN_COMMUNE_PREFIX", "FileReport", "IngestResult", "ingest_file", "ingest_frame",
           "run_ingest"]
