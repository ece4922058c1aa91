"""Every notebook in colabs/ runs top to bottom (quick settings via environment variables:
`JAXRL_QUICKSTART_STEPS`, and `JAXRL_NOTEBOOK_QUICK=1`, which the longer demos read to shrink
their sizes while running every cell)."""

import glob
import os

import nbformat
import pytest
from conftest import ROOT
from nbclient import NotebookClient

NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "colabs", "*.ipynb")))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    monkeypatch.setenv("JAXRL_QUICKSTART_STEPS", "4096")
    monkeypatch.setenv("JAXRL_NOTEBOOK_QUICK", "1")  # smaller demo sizes (same code paths)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": ROOT}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
