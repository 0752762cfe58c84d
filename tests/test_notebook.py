"""notebooks/walkthrough.ipynb runs headless from top to bottom on the sample data, and is committed clean."""
import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "walkthrough.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.slow  # 75 s, six command-line processes: make test-slow; each command it runs is tested in make test
@pytest.mark.train
def test_notebook_executes_every_cell(tmp_path, monkeypatch):
    """Run it like a user would (the venv's python3 kernel), in a temporary folder; any failing cell fails."""
    work = tmp_path / "work"
    monkeypatch.setenv("CLOTHING_CNN_REPO", str(REPO))
    monkeypatch.setenv("WALKTHROUGH_DIR", str(work))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, when one fails

    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors
    run = work / "runs" / "walkthrough"
    for name in ("model.keras", "history.csv", "curves.png", "confusion.png", "metrics.json"):
        assert (run / name).is_file(), name
    assert json.loads((run / "metrics.json").read_text())["top1"] > 0.5  # six classes: chance is 1/6
    for figure in ("preview.png", "errors.png", "errors-cam.png", "receptive_fields.png"):
        assert (work / figure).stat().st_size > 10_000, figure
    cams = (work / "cams" / "cams.csv").read_text().splitlines()
    assert len(cams) == 1 + 6 and all((work / "cams" / line.rsplit(",", 1)[1]).is_file() for line in cams[1:])
    images = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) >= 8  # class balance, preview, curves, confusion, predictions, errors, heatmaps (+ more)
