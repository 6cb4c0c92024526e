"""Both notebooks run top to bottom (small parameters), in a kernel from this venv,
and are stored without outputs."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from small_trace import write_small_trace

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _run(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
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
