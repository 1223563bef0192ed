"""Run notebooks/inventory_2019.ipynb on the outputs of `make inventory` and save
it with its outputs (what `make notebook` does), from the notebooks folder, as
a planner would open it."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "inventory_2019.ipynb"

if __name__ == "__main__":
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    nbformat.write(nb, NOTEBOOK)
    print(f"notebook rendered with its outputs → {NOTEBOOK}")
