"""The planner's notebook: committed with its outputs (a reader sees the
figures without running it), and run headless from ``notebooks/`` as a user
would, finding the work directory from the ``inventory.toml`` above it."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "inventory_2019.ipynb"


def _outputs(nb) -> tuple[str, list, list]:
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    errors = [o for o in outputs if o.output_type == "error"
              or (o.output_type == "stream" and o.get("name") == "stderr" and "Traceback" in o.get("text", ""))]
    return text, images, errors


def _reads_like_the_sample(text: str, images: list) -> None:
    assert "Huyện Văn Quan" in text and "Diện tích theo nhóm đất (ha)" in text  # the structure per district
    assert "RPH → RSX" in text and "LUA → ONT" in text  # the largest changes of the sample
    assert "giảm sang ONT" in text  # Biểu 14's note on paddy
    assert "63,52" in text  # areas written the Vietnamese way
    assert len(images) == 3  # structure chart, changes chart, the map


def test_notebook_is_committed_with_its_outputs_in_vietnamese():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs and c.execution_count for c in code)
    text, images, errors = _outputs(nb)
    assert not errors
    _reads_like_the_sample(text, images)
    prose = " ".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "Cơ cấu sử dụng đất" in prose and "biến động" in prose


def test_notebook_runs_from_the_notebooks_folder(sample_run, tmp_path, monkeypatch):
    monkeypatch.delenv("KIEMKE_WORKDIR", raising=False)
    (tmp_path / "notebooks").mkdir()
    shutil.copy(NOTEBOOK, tmp_path / "notebooks")
    (tmp_path / "inventory.toml").write_text(
        f'[inventory]\nprovince = "Lạng Sơn"\nworkdir = "{sample_run.as_posix()}"\n', encoding="utf-8")
    nb = nbformat.read(tmp_path / "notebooks" / NOTEBOOK.name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path / "notebooks")}}).execute()
    text, images, errors = _outputs(nb)
    assert not errors
    _reads_like_the_sample(text, images)
