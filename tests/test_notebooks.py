"""Both notebooks run top to bottom (small parameters), in a kernel running this
interpreter (the venv's), and are stored without outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from small_trace import write_small_trace

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


KERNEL = "byoa-tests"


@pytest.fixture(autouse=True)
def venv_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel spec for this interpreter (the venv's), found first on JUPYTER_PATH,
    so that no other "python3" kernel on the machine is picked up."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "byoa tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))


def _run(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


def _outputs(nb: nbformat.NotebookNode) -> tuple[str, int]:
    text, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            images += "image/png" in data
            text.append(out.get("text", "") + str(data.get("text/plain", ""))
                        + str(data.get("text/markdown", "")))
    return "\n".join(text), images


@pytest.mark.parametrize("name", ["wasted_fast_hours.ipynb", "capacity_planning.ipynb"])
def test_notebook_is_stored_without_outputs(name: str) -> None:
    nb = json.loads((NOTEBOOKS / name).read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_wasted_fast_hours_notebook_runs_and_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NB_DAYS", "20")
    monkeypatch.setenv("NB_SEEDS", "1")
    monkeypatch.setenv("NB_WORKERS", "2")
    text, images = _outputs(_run("wasted_fast_hours.ipynb"))
    assert images >= 2
    assert "5 scenarios" in text and "saved_vs_documented" in text


def test_capacity_planning_notebook_plans_a_small_trace(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    trace = write_small_trace(tmp_path / "small.jsonl")
    monkeypatch.setenv("NB_TRACE", str(trace))
    monkeypatch.setenv("NB_DAYS", "3")
    monkeypatch.setenv("NB_MAX_ACCOUNTS", "4")
    monkeypatch.setenv("NB_SEEDS", "2")
    monkeypatch.setenv("NB_MAX_SIMULATED", "4")
    monkeypatch.setenv("NB_OUT", str(tmp_path / "out"))
    text, images = _outputs(_run("capacity_planning.ipynb"))
    assert images >= 2
    assert "## Recommendation: 1 pro" in text
    assert (tmp_path / "out" / "workload-3d.jsonl.gz").is_file()  # 2-day trace repeated
