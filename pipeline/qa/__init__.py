"""QA: topology problems of each commune's parcels, located and reported
(:mod:`.core` finds them, :mod:`.stage` runs every commune, :mod:`.report`
writes ``reports/qa.md``, ``qa.html`` and ``qa.json``; :mod:`.between_communes`
finds the land two communes both hold, for the aggregate stage)."""

from .core import LAYER_TITLES, LAYERS, PROBLEM_COLUMNS, CommuneQA, qa_commune
from .stage import run_qa

__all__ = ["LAYERS", "LAYER_TITLES", "PROBLEM_COLUMNS", "CommuneQA", "qa_commune", "run_qa"]
