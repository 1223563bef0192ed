"""The bundled sample: synthetic cadastral parcels inside real Lạng Sơn
communes (:mod:`.generator`), the problems planted for QA to find
(:mod:`.defects`), the 2014 inventory and 2018 statistics they are compared
with (:mod:`.previous`), all written as officers hold them (:mod:`.write`);
and the same parcels as a 2024 inventory on the communes of 1 July 2025
(:mod:`.sample_2024`).

Commune boundaries: censusVN2009 (MIT, © 2017 Marc Choisy), see
``pipeline/data/README.md``.
"""

from .generator import SAMPLE_COMMUNES, SampleCommune, commune_boundaries, generate_commune, with_planted_problems
from .sample_2024 import write_sample_2024
from .write import UNITS_2025, generate_sample

__all__ = ["SAMPLE_COMMUNES", "UNITS_2025", "SampleCommune", "commune_boundaries", "generate_commune",
           "generate_sample", "with_planted_problems", "write_sample_2024"]
