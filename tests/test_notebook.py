"""docs/tutorial.ipynb runs from top to bottom, with its accuracy floor, on the shared MNIST."""

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.slow
def test_the_tutorial_notebook_runs(tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setenv("LENET_DATA_DIR", str(mnist_dir))
    shutil.copytree(DOCS / "examples", tmp_path / "examples")
    nb = nbformat.read(DOCS / "tutorial.ipynb", as_version=4)
    # Runs a copy in tmp_path: the committed notebook keeps the outputs it was saved with.
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "validation accuracy after 2 epochs" in outputs
    # Every figure is drawn inline, also after lenet has drawn its own to files (it must not
    # switch the notebook's matplotlib backend): the data, curves, inside, your digit.
    images = sum("image/png" in o.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
                 for o in cell.outputs)
    assert images >= 4, images
    assert (tmp_path / "runs" / "lenet5" / "model.safetensors").is_file()


def test_started_from_docs_the_notebook_finds_the_data_as_the_command_does(tmp_path, monkeypatch):
    """A clone whose data/MNIST holds the files, the notebook started from its docs/ and no
    LENET_DATA_DIR: the first cell finds them, and every `lenet` import of every cell resolves."""
    from conftest import write_dataset

    write_dataset(tmp_path / "data" / "MNIST", n_train=20, n_test=10)
    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path / "docs")
    monkeypatch.delenv("LENET_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no user-cache copy to fall back on
    monkeypatch.setenv("MPLBACKEND", "Agg")
    cells = [cell.source for cell in nbformat.read(DOCS / "tutorial.ipynb", as_version=4).cells
             if cell.cell_type == "code"]
    space: dict = {}
    exec(cells[0], space)  # the committed notebook's own first cell
    assert Path(space["DATA"]) == tmp_path / "data" / "MNIST"
    (_, y_train), _ = space["lenet"].datasets.mnist(space["DATA"])
    assert len(y_train) == 20
    for source in cells:
        for line in source.splitlines():
            if line.startswith(("from lenet", "import lenet")):
                exec(line, {})
