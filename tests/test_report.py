"""The plots of tuner.report: one preamble (Agg, or a skip said in words), each figure written and freed."""

from __future__ import annotations

import sys

import pytest

from tuner.report import PLOTS_SKIPPED, plot_compare, plot_topology

DOC = {
    "workload": "alexnet", "board": "jetson-nano", "simulated": True, "rate_ips": None, "dvfs": "schedutil/podgov",
    "rows": [
        {"governor": "schedutil/podgov", "feasible": True, "energy_per_inference_mj": 10.0, "saving_vs_dvfs": 0.0,
         "residency": {"cpu": {"921600": 0.4, "1479000": 0.6}, "gpu": {"614400000": 1.0}}},
        {"governor": "tuned", "feasible": True, "energy_per_inference_mj": 8.0, "saving_vs_dvfs": 0.2,
         "residency": {"cpu": {"921600": 1.0}, "gpu": {"614400000": 1.0}}},
        {"governor": "powersave", "feasible": False, "energy_per_inference_mj": None, "saving_vs_dvfs": None},
    ],
}


def test_without_matplotlib_the_plots_are_skipped_in_words(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    assert plot_compare(tmp_path, DOC) == PLOTS_SKIPPED
    assert plot_topology(tmp_path, None, "alexnet", "jetson-nano", True) == PLOTS_SKIPPED  # type: ignore[arg-type]
    assert "pip install 'edgetune[plots]'" in PLOTS_SKIPPED and not list(tmp_path.iterdir())


def test_compare_plots_are_written_on_the_file_backend_and_every_figure_is_closed(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib
    import matplotlib.pyplot as plt

    files = plot_compare(tmp_path, DOC)
    assert [p.name for p in files] == ["compare.png", "residency.png"]
    assert all(p.stat().st_size > 5_000 for p in files)
    assert matplotlib.get_backend().lower() == "agg"
    assert plt.get_fignums() == []  # a long-running daemon or bench must not accumulate figures
