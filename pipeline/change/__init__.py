"""Change since the previous inventory (biến động đất đai, e.g. 2014 → 2019).

Per commune, the previous inventory's current-use layer (:mod:`.previous`)
is overlaid exactly with this inventory's parcels and gap khoanh
(:mod:`.overlay`); codes are compared at Biểu 14's level (:mod:`.codes`).
Outputs (:mod:`.stage`): ``change/<commune>.parquet``, ``stats/transitions.csv``
and ``reports/change.md`` (:mod:`.report`).
"""

from .codes import GAP, OUTSIDE, comparison_code, comparison_codes
from .overlay import (
    change_commune,
    code_shares,
    couple,
    current_units,
    dominant_previous,
    raster_pairs,
    share_groups,
    transitions,
    vector_pairs,
)
from .previous import read_previous, without_overlaps
from .stage import run_change

__all__ = ["GAP", "OUTSIDE", "change_commune", "code_shares", "comparison_code", "comparison_codes", "couple",
           "current_units", "dominant_previous", "raster_pairs", "read_previous", "run_change", "share_groups",
           "transitions", "vector_pairs", "without_overlaps"]
