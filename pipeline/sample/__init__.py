"""The bundled sample: synthetic cadastral parcels inside real Lạng Sơn
communes (:mod:`.generator`), the problems planted for QA to find
(:mod:`.defects`), the 2014 inventory and 2018 statistics they are compared
with (:mod:`.previous`), all written as officers hold them (:mod:`.write`).

Commune boundaries: censusVN2009 (MIT, © 2017 Marc Choisy), see
``pipeline/data/README.md``.
"""

from .generator import SAMPLE_COMMUNES, SampleCommune, commune_boundaries, generate_commune, with_planted_problems
from .write import generate_sample

__all__ = ["SAMPLE_COMMUNES", "SampleCommune", "commune_boundaries", "generate_commune", "generate_sample",
           "with_planted_problems"]
