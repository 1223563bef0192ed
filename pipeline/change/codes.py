"""The codes two inventories are compared at: Biểu 14's level (LUA, HNK, RSX,
RPH, RDD without their sub-codes; the template's ``collapse``), and the two
pseudo-codes of area outside a layer and of a current gap."""

from __future__ import annotations

from ..reference import landuse_tree

OUTSIDE = "NGOAI"  # area outside the other layer
GAP = "KHOANGHO"  # a current khoanh with no code (a gap the QA found)


def comparison_code(code: str, collapse: frozenset[str]) -> str:
    """The code a land use is compared at: its highest ancestor-or-self in
    ``collapse`` (RST → RSX, LUC → LUA), else the code itself."""
    tree = landuse_tree()
    if code not in tree:
        return code
    for candidate in (*reversed(tree.ancestors(code)), code):
        if candidate in collapse:
            return candidate
    return code


def comparison_codes(collapse: frozenset[str]) -> list[str]:
    """Every code a comparison can end on, in the circular's order."""
    tree = landuse_tree()
    return [c for c in tree.codes
            if not any(a in collapse for a in tree.ancestors(c)) and (tree.is_leaf(c) or c in collapse)]
