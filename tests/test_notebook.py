"""The planner's notebook runs headless on the sample's outputs, so it never goes stale."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "inventory_2019.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_runs_on_the_sample_outputs(sample_run, monkeypatch):
    monkeypatch.setenv("KIEMKE_WORKDIR", str(sample_run))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Huyện Văn Quan" in text  # the structure table per district
    assert "RPH → RSX" in text and "LUA → ONT" in text  # the largest changes of the sample
    assert "giảm sang ONT" in text  # Biểu 14's note on paddy
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) == 3  # structure chart, changes chart, the map
    assert not [o for o in outputs if o.output_type == "stream" and o.get("name") == "stderr"
                and "Traceback" in o.get("text", "")]

