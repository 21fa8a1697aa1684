"""benchmarks/loudva.py: a LoudVA measurement folder becomes the shared real surface's CSV, which imports."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from tuner.recorded import import_csv

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "loudva.py"
PERF_HEADER = ("Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,"
               "Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency")


@pytest.fixture(scope="module")
def loudva():
    spec = importlib.util.spec_from_file_location("loudva", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def folder(tmp_path: Path, kind: str, runs: dict) -> Path:
    """A board's measurements folder as LoudVA lays it out: ``runs`` maps a clock (or mode)
    to its (concurrency, inferences/s, server times in us, power in mW) rows."""
    stem = "freq" if kind == "freqs" else "mode"
    root = tmp_path / "xavier-nx-00" / "measurements"
    for part in ("performance", "power"):
        (root / part / kind).mkdir(parents=True)
    for value, rows in runs.items():
        lines = [PERF_HEADER] + [f"{c},{ips},500,9000,{q},300,{infer},80,1,{q + infer + 9000},0,0,{2 * (q + infer)}"
                                 for c, ips, q, infer, _mw in rows]
        perf = root / "performance" / kind / f"performance_measurements_{stem}_{value}.csv"
        perf.write_text("\n".join(lines) + "\n")
        (root / "power" / kind / f"power_measurement_stats_{stem}_{value}.csv").write_text(
            "".join(f"Mean: {mw}\n" for *_, mw in rows))
    return root


CLOCKS = {
    510000000: [(1, "12.5", 300, 70000, "7300.50"), (2, "14.0", 60000, 69000, "7900.00")],
    1020000000: [(1, "20.0", 280, 40000, "11000.00"), (2, "25.0", 30000, 38000, "12000.00")],
}


def test_a_clock_sweep_becomes_the_shared_files_columns_and_imports_as_gpu_by_concurrency(loudva, tmp_path):
    rows = loudva.rows_of(folder(tmp_path, "freqs", CLOCKS), "jetson-xavier-nx")
    assert len(rows) == 4 and list(rows[0]) == list(loudva.HEADER)
    first = rows[0]
    assert first["device_id"] == "xavier-nx-00" and first["gpu_freq_hz"] == "510000000"
    assert first["gpu_freq_frac_of_max"] == "0.500000" and first["nvpmodel_mode"] == ""
    assert first["power_w"] == "7.30050"  # mW to W, digits as written
    assert first["latency_s"] == "0.070680"  # queue + input + infer + output, in seconds
    assert float(first["energy_per_inference_j"]) == pytest.approx(7.3005 / 12.5, rel=1e-6)
    assert float(first["src_energy_j_power_x_latency"]) == pytest.approx(7.3005 * 0.07068, rel=1e-6)

    assert [r["retries"] for r in rows] == ["0"] * 4  # no retried_freqs.txt: nothing was re-run

    out = tmp_path / "nx.csv"
    loudva.write(rows, out)
    doc = import_csv(out, tmp_path / "run", workload="inception_v3")
    assert doc["simulated"] is False and doc["board"] == "jetson-xavier-nx"
    assert doc["knobs"] == {"gpu_freq_hz": [510000000, 1020000000], "concurrency": [1, 2]}
    assert doc["space_size"] == 4


def test_power_mode_runs_import_as_presets(loudva, tmp_path):
    runs = {0: CLOCKS[510000000], 3: CLOCKS[1020000000]}
    out = tmp_path / "modes.csv"
    assert loudva.main([str(folder(tmp_path, "modes", runs)), "--board", "jetson-xavier-nx", "--modes",
                        "--out", str(out)]) == 0
    with out.open() as fh:
        written = list(csv.DictReader(fh))
    assert [r["nvpmodel_mode"] for r in written] == ["0", "0", "3", "3"] and not written[0]["gpu_freq_hz"]
    doc = import_csv(out, tmp_path / "run", workload="inception_v3")
    assert doc["knobs"] == {"power_mode": [0, 3], "concurrency": [1, 2]}


@pytest.mark.parametrize("power, message", [
    ("Mean: 7300.50\n", "has 2 runs but power_measurement_stats_freq_510000000.csv 1 power means"),
    ("Mean: 7300.50\nMax: 9000\n", "expected 'Mean: <mW>'"),
])
def test_power_means_that_do_not_match_the_runs_are_refused_and_nothing_is_written(loudva, tmp_path, capsys,
                                                                                    power, message):
    root = folder(tmp_path, "freqs", CLOCKS)
    (root / "power" / "freqs" / "power_measurement_stats_freq_510000000.csv").write_text(power)
    out = tmp_path / "nx.csv"
    assert loudva.main([str(root), "--board", "jetson-xavier-nx", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_a_folder_that_is_not_a_boards_measurements_is_named(loudva, tmp_path, capsys):
    assert loudva.main([str(tmp_path), "--board", "jetson-nano", "--out", str(tmp_path / "x.csv")]) == 1
    assert "give a board's measurements folder" in capsys.readouterr().err


RAW_NANO = Path(__file__).resolve().parent / "data" / "loudva" / "LoudJetson0" / "measurements"
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "real-surfaces" / "loudva-nano-inception_v3.csv"


def test_the_raw_nano_runs_rebuild_the_shared_real_surface(loudva):
    """The converter is the shared file's construction: from LoudVA's own files (tests/data/loudva,
    copied unchanged) it gives every value of ../shared/real-surfaces/loudva-nano-inception_v3.csv."""
    rows = loudva.rows_of(RAW_NANO, "jetson-nano")
    assert len(rows) == 143 and {r["device_id"] for r in rows} == {"LoudJetson0"}
    best = min(rows, key=lambda r: float(r["energy_per_inference_j"]))
    assert (best["gpu_freq_hz"], best["concurrency"], best["energy_per_inference_j"]) == ("614400000", "10", "0.697233")
    if not SHARED.exists():
        pytest.skip(f"the shared real surface is absent here ({SHARED})")
    with SHARED.open() as fh:
        shared = {(r["gpu_freq_hz"], r["concurrency"]): r for r in csv.DictReader(fh)}
    ours = {(r["gpu_freq_hz"], r["concurrency"]): r for r in rows}
    assert ours.keys() == shared.keys()
    for key, row in shared.items():
        for field in ("gpu_freq_frac_of_max", "throughput_inf_per_s", "latency_s", "latency_client_p50_s",
                      "latency_client_p99_s", "power_w", "energy_per_inference_j", "src_energy_j_power_x_latency"):
            assert float(ours[key][field]) == pytest.approx(float(row[field]), rel=2e-5), (key, field)


def test_retries_come_from_retried_freqs_txt(loudva, tmp_path):
    root = folder(tmp_path, "freqs", CLOCKS)
    (root / "retried_freqs.txt").write_text("(510000000, 2) 8 \n(1020000000, 1) 100 !!!!\n")
    rows = loudva.rows_of(root, "jetson-xavier-nx")
    assert [(r["gpu_freq_hz"], r["concurrency"], r["retries"]) for r in rows] == [
        ("510000000", "1", "0"), ("510000000", "2", "8"), ("1020000000", "1", "100"), ("1020000000", "2", "0")]
    (root / "retried_freqs.txt").write_text("510000000 2 8\n")
    with pytest.raises(loudva.LoudvaError, match="retried_freqs.txt:1: expected"):
        loudva.rows_of(root, "jetson-xavier-nx")


def test_a_folder_whose_files_hold_no_runs_is_refused_and_nothing_is_written(loudva, tmp_path, capsys):
    root = folder(tmp_path, "freqs", {510000000: []})
    out = tmp_path / "nx.csv"
    assert loudva.main([str(root), "--board", "jetson-xavier-nx", "--out", str(out)]) == 1
    assert "holds no run with a throughput" in capsys.readouterr().err and not out.exists()
