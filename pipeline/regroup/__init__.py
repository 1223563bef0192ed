"""Regrouping the inventory onto new administrative units (the communes of 1 July 2025)."""

from .overlay import crosswalk, regroup
from .stage import load_new_units, regroup_all, regroup_units, run_regroup, units_outputs

__all__ = ["crosswalk", "load_new_units", "regroup", "regroup_all", "regroup_units", "run_regroup", "units_outputs"]
