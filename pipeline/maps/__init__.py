"""Maps: current land-use and change map sheets for every commune, district
and the province (:mod:`.stage`), laid out by :mod:`.layout` at the
regulation scale, filled by :mod:`.content` and :mod:`.change`, drawn by
:mod:`.render`."""

from .content import sheet_content, structure_for
from .layout import regulation_scale, sheet_layout
from .render import SheetContent, render_sheet
from .stage import run_maps

__all__ = ["SheetContent", "regulation_scale", "render_sheet", "run_maps", "sheet_content", "sheet_layout",
           "structure_for"]
