"""Forms: the statistical forms of the regime (Biểu 01–04/TKĐĐ, the khoanh
list, Biểu 14 and the transition matrix under Circular 27/2018; Biểu 01–05/TKKK,
Phụ lục III and IV under Circular 08/2024), per commune, district and
province, as XLSX and CSV.

Layouts are data (``pipeline/templates/<regime>.toml``); each form kind is a
module behind the registry of :mod:`.base` (:mod:`.by_owner`, :mod:`.by_unit`,
:mod:`.counts`, :mod:`.structure`, :mod:`.khoanh_list`, :mod:`.change`,
:mod:`.change_list`, :mod:`.transition`); numbers follow
:mod:`.cells` (each commune leaf cell rounded once, everything else a sum);
:mod:`.checks` runs on every build; :mod:`.write` writes XLSX and CSV.
"""

from . import by_owner, by_unit, change, change_list, counts, khoanh_list, structure, transition  # noqa: F401  (register the kinds)
from .cells import FormConsistencyError, form_rows, leaf_cells, subtree_sums
from .checks import check_forms
from .stage import compute_forms, run_forms

__all__ = ["FormConsistencyError", "check_forms", "compute_forms", "form_rows", "leaf_cells", "run_forms",
           "subtree_sums"]
