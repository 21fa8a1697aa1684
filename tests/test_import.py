"""edgetune import: measurements taken elsewhere become a run directory that replay: plays."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tuner.cli.main import app
from tuner.config import Config
from tuner.recorded import import_csv
from tuner.replay import ReplayBoard

cli = CliRunner()
REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "real-surfaces" / "loudva-nano-inception_v3.csv"


def invoke(*args: str) -> dict:
    result = cli.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def write_csv(path: Path, header: list, rows: list) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_trials(run: Path) -> list:
    with (run / "trials.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def real_surface() -> Path:
    if not REAL.exists():
        pytest.skip(f"the shared real surface is absent here ({REAL}); it lives in ../shared/real-surfaces")
    return REAL


def test_the_shared_real_surface_imports_and_benches_over_gpu_and_concurrency(real_surface, tmp_path):
    out = tmp_path / "loudva"
    doc = invoke("import", str(real_surface), "--out", str(out), "--workload", "inception_v3")
    assert doc["kind"] == "import" and doc["simulated"] is False and doc["board"] == "jetson-nano"
    assert doc["workload"] == "inception_v3" and doc["context"]["workload"] == "inception_v3_tf_fp32_triton_dynbatch"
    gpu = [153600000 + 76800000 * i for i in range(11)]
    assert doc["knobs"] == {"gpu_freq_hz": gpu, "concurrency": list(range(1, 14))}
    assert doc["space_size"] == 143 and doc["complete"] is True and doc["repeats"] == {"min": 1, "max": 1}
    assert doc["pinned"] == {"power_mode": 0}  # nvpmodel_mode: one value, context not a knob
    assert set(doc["absent"]) == {"cpu_freq_khz", "emc_freq_hz"}  # left to their governors: empty columns
    assert doc["aliases"] == {"batch_size": "concurrency"}  # the file's batch_size column copies concurrency
    assert doc["results"]["energy_per_inference_j"] == "column energy_per_inference_j"
    assert doc["results"]["time_per_inference_s"] == "1 / throughput_inf_per_s"
    assert "p99" in doc["results"]["latency_p95_s"]
    assert set(doc["ignored_columns"]) == {"gpu_freq_frac_of_max", "src_energy_j_power_x_latency"}
    assert len(doc["source"]["sha256"]) == 64 and doc["source"]["rows"] == 143
    # the minimum the README beside the file names: 614.4 MHz, concurrency 10, 0.697 J
    assert doc["best"]["config"] == {"gpu_freq_hz": 614400000, "concurrency": 10}
    assert doc["best"]["energy_per_inference_mj"] == pytest.approx(697.233, rel=1e-6)
    rows = read_trials(out)
    assert len(rows) == 143 and list(rows[0])[:2] == ["concurrency", "gpu_freq_hz"]
    assert {r["simulated"] for r in rows} == {"0"} and (out / "source.csv").read_bytes() == real_surface.read_bytes()

    board = ReplayBoard(out)
    assert board.info.simulated is False and board.searchable == ("gpu_freq_hz", "concurrency")
    top = board.expected("inception_v3", Config({"gpu_freq_hz": 921600000, "concurrency": 13}))
    low = board.expected("inception_v3", Config({"gpu_freq_hz": 614400000, "concurrency": 10}))
    assert top.energy_per_inference_j / low.energy_per_inference_j == pytest.approx(1.26, abs=0.01)  # README: +26 %
    with real_surface.open() as fh:
        first = next(csv.DictReader(fh))
    m = board.expected("inception_v3", Config({"gpu_freq_hz": int(first["gpu_freq_hz"]),
                                                "concurrency": int(first["concurrency"])}))
    assert m.time_s / m.inferences == pytest.approx(1 / float(first["throughput_inf_per_s"]), rel=1e-5)

    bench = invoke("bench", "--board", f"replay:{out}", "--workload", "inception_v3", "--seeds", "2",
                   "--strategies", "bo,ogd,random")
    assert bench["space_size"] == 143 and bench["knobs"] == ["gpu_freq_hz", "concurrency"]
    assert bench["simulated"] is False
    assert bench["optimum"]["config"] == {"gpu_freq_hz": 614400000, "concurrency": 10}
    assert set(bench["space"]["not_searched"]) == {"cpu_freq_khz", "batch_size"}
    assert "copy of concurrency" in bench["space"]["not_searched"]["batch_size"]
    for row in bench["strategies"]:
        assert 0 <= row["regret_at_budget"]["median"] < 1 and row["trials_at_budget"] == 15

    tuned = invoke("tune", "--board", f"replay:{out}", "--workload", "inception_v3", "--strategy", "ogd",
                   "--out", str(tmp_path / "tune"))
    assert tuned["space_size"] == 143 and tuned["dvfs"] is None and tuned["saving_vs_dvfs"] is None
    assert tuned["best"]["energy_per_inference_mj"] > 0 and "no DVFS reference" in tuned["space"]["no_reference"]


def test_power_and_throughput_give_energy_and_time_per_inference_and_repeats_are_kept(tmp_path):
    rows = []
    for gpu_mhz, power, ips in ((306, 3.0, 20.0), (612, 4.0, 40.0), (918, 6.0, 50.0)):
        for k, wobble in enumerate((0.98, 1.0, 1.02)):
            rows.append([gpu_mhz, 8, round(power * wobble, 4), ips, 50 + k])
    src = write_csv(tmp_path / "m.csv", ["gpu_freq_mhz", "batch_size", "power_w", "throughput_ips", "latency_p95_ms"],
                    rows)
    out = tmp_path / "run"
    doc = invoke("import", str(src), "--out", str(out), "--workload", "w", "--board", "jetson-orin-nx",
                 "--provenance", "lab notebook 3")
    assert doc["knobs"] == {"gpu_freq_hz": [306000000, 612000000, 918000000]}  # MHz column, Hz knob
    assert doc["pinned"] == {"batch_size": 8} and doc["repeats"] == {"min": 3, "max": 3}
    assert doc["source"]["provenance"] == "lab notebook 3" and doc["simulated"] is False
    assert doc["results"]["energy_per_inference_j"] == "power_w / throughput_ips"
    # 612 MHz: 4 W at 40/s = 0.1 J per inference; 306 MHz: 0.15 J; 918 MHz: 0.12 J
    assert doc["best"]["config"] == {"gpu_freq_hz": 612000000}
    assert doc["best"]["energy_per_inference_mj"] == pytest.approx(100.0, rel=1e-4)
    assert doc["best"]["repeats"] == 3 and doc["best"]["energy_spread"] == pytest.approx(0.04, rel=1e-3)
    trials = read_trials(out)
    assert len(trials) == 9 and sorted({r["repeat"] for r in trials}) == ["0", "1", "2"]
    board = ReplayBoard(out, seed=3)
    config = Config({"gpu_freq_hz": 612000000})
    drawn = {round(board.measure("w", config).energy_j, 6) for _ in range(40)}
    assert drawn == {0.098, 0.1, 0.102}  # one recorded repeat per draw: the recording's own noise
    truth = board.expected("w", config)
    assert truth.energy_per_inference_j == pytest.approx(0.1) and truth.time_s == pytest.approx(1 / 40)
    assert truth.batch_latency_p95_s == pytest.approx(0.051)
    bench = invoke("bench", "--board", f"replay:{out}", "--workload", "w", "--seeds", "2", "--strategies",
                   "random,ogd", "--objective", "time")
    assert bench["optimum"]["config"] == {"gpu_freq_hz": 918000000}  # fastest: 50/s
    assert bench["space"]["not_searched"]["batch_size"] == "pinned at 8 in the recording"


def test_map_names_columns_a_custom_knob_joins_and_a_simulated_column_is_honoured(tmp_path):
    rows = [[f"{g}MHz", c, r, 2.0 + g / 500, 10.0 * c, "1"] for g in (300, 600) for c in (1, 2) for r in (224, 320)]
    src = write_csv(tmp_path / "x.csv", ["GPU clock", "in flight", "res", "Watts", "img/s", "simulated"], rows)
    out = tmp_path / "run"
    doc = invoke("import", str(src), "--out", str(out), "--map", "GPU clock=gpu_freq_hz", "--map",
                 "in flight=concurrency", "--map", "res=resolution", "--map", "Watts=power_w", "--map",
                 "img/s=throughput_ips")
    assert doc["knobs"] == {"gpu_freq_hz": [300000000, 600000000], "concurrency": [1, 2], "resolution": [224, 320]}
    assert doc["space_size"] == 8 and doc["simulated"] is True and doc["workload"] == "x"
    assert doc["source"]["simulated_from"] == "column simulated"
    bench = invoke("bench", "--board", f"replay:{out}", "--workload", "x", "--seeds", "1", "--strategies", "sweep")
    assert bench["space_size"] == 8 and bench["simulated"] is True
    assert set(bench["knobs"]) == {"gpu_freq_hz", "concurrency", "resolution"}
    # --simulated marks every row, whatever a column says
    plain = write_csv(tmp_path / "p.csv", ["batch_size", "energy_per_inference_j"], [[1, 0.5], [2, 0.4]])
    again = invoke("import", str(plain), "--out", str(tmp_path / "p"), "--simulated")
    assert again["simulated"] is True and {r["simulated"] for r in read_trials(tmp_path / "p")} == {"1"}


def test_a_row_without_a_result_is_infeasible_and_an_incomplete_grid_is_searched_as_recorded(tmp_path):
    rows = [[m, b, "" if (m, b) == (0, 4) else 1.0 / b + m * 0.1] for m in (0, 1) for b in (1, 2, 4)]
    rows = [r for r in rows if (r[0], r[1]) != (1, 4)]  # one setting never measured
    src = write_csv(tmp_path / "g.csv", ["power_mode", "batch_size", "energy_per_inference_mj"], rows)
    out = tmp_path / "run"
    doc = invoke("import", str(src), "--out", str(out), "--workload", "g")
    assert doc["n_infeasible"] == 1 and doc["space_size"] == 5 and doc["grid_size"] == 6
    assert doc["complete"] is False
    assert doc["results"]["time_per_inference_s"] is None
    trials = read_trials(out)
    failed = [r for r in trials if r["feasible"] == "0"]
    assert len(failed) == 1 and failed[0]["failure"] == "no result recorded"
    bench = invoke("bench", "--board", f"replay:{out}", "--workload", "g", "--seeds", "2",
                   "--strategies", "sweep,random,bo,ogd")
    assert bench["space_size"] == 5  # the unrecorded (1, 4) is not in the space
    assert bench["optimum"]["config"] == {"power_mode": 0, "batch_size": 2}
    result = subprocess.run([sys.executable, "-m", "tuner.cli.main", "bench", "--board", f"replay:{out}",
                             "--workload", "g", "--objective", "time"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "needs time per inference" in result.stderr


def test_spelled_out_headers_with_units_are_read_without_map(tmp_path):
    """A spreadsheet's headers ("GPU Freq (MHz)", "Power [W]", perf_analyzer's
    "Inferences/Second", a latency in µs) read as edgetune's names, units converted."""
    rows = [[mhz, c, 4.0 + mhz / 300, 10.0 * c * mhz / 600, 1000.0 * c] for mhz in (300, 600) for c in (1, 2)]
    src = write_csv(tmp_path / "lab.csv", ["GPU Freq (MHz)", "Concurrency", "Power [W]", "Inferences/Second",
                                           "Latency p95 (µs)"], rows)
    doc = invoke("import", str(src), "--out", str(tmp_path / "run"), "--workload", "w")
    assert doc["knobs"] == {"gpu_freq_hz": [300000000, 600000000], "concurrency": [1, 2]}
    assert doc["results"]["energy_per_inference_j"] == "Power [W] / Inferences/Second"
    assert doc["results"]["latency_p95_s"] == "column Latency p95 (µs)"
    # 600 MHz, concurrency 2: 6 W at 20/s = 0.3 J per inference, the lowest
    assert doc["best"]["config"] == {"gpu_freq_hz": 600000000, "concurrency": 2}
    assert doc["best"]["energy_per_inference_mj"] == pytest.approx(300.0, rel=1e-4)
    truth = ReplayBoard(tmp_path / "run").expected("w", Config({"gpu_freq_hz": 600000000, "concurrency": 2}))
    assert truth.batch_latency_p95_s == pytest.approx(0.002)
    # microjoules are microjoules, and a unit edgetune does not know is never read as another
    micro = write_csv(tmp_path / "uj.csv", ["gpu_freq_hz", "Energy per inference (µJ)"], [[1, 5.0], [2, 4.0]])
    assert invoke("import", str(micro), "--out", str(tmp_path / "uj"))["best"]["energy_per_inference_mj"] == \
        pytest.approx(0.004)
    nano = write_csv(tmp_path / "nj.csv", ["gpu_freq_hz", "Energy per inference (nJ)"], [[1, 5.0], [2, 4.0]])
    result = cli.invoke(app, ["import", str(nano), "--out", str(tmp_path / "nj")])
    assert result.exit_code == 1 and "no result columns" in str(result.exception)


def test_headers_in_other_words_and_without_units_are_read_by_their_words(tmp_path):
    """Other tools' headers ("gpu_freq" in MHz, "CPU clock" in GHz, "bs", "avg power" in mW,
    "throughput (img/s)", "avg latency (ms)") name edgetune's quantities: read without --map,
    a missing unit taken from the values' size and said so; a duration is never a rate."""
    rows = [[mhz, ghz, bs, 4000.0 + 10 * mhz, 100.0 * bs * mhz / 600, 20.0 * bs]
            for mhz in (614.4, 921.6) for ghz in (1.2, 1.5) for bs in (1, 8)]
    src = write_csv(tmp_path / "other.csv", ["gpu_freq", "CPU clock", "bs", "avg power", "throughput (img/s)",
                                             "avg latency (ms)"], rows)
    out = tmp_path / "run"
    doc = invoke("import", str(src), "--out", str(out), "--workload", "w")
    assert doc["knobs"] == {"cpu_freq_khz": [1200000, 1500000], "gpu_freq_hz": [614400000, 921600000],
                            "batch_size": [1, 8]}
    assert doc["units_inferred"] == {"gpu_freq": {"quantity": "gpu_freq_hz", "unit": "MHz"},
                                     "CPU clock": {"quantity": "cpu_freq_khz", "unit": "GHz"},
                                     "avg power": {"quantity": "power", "unit": "mW"}}
    assert doc["results"]["energy_per_inference_j"] == "avg power / throughput (img/s)"
    assert doc["results"]["latency_p50_s"] == "column avg latency (ms) (the mean: no percentile recorded)"
    # 921.6 MHz at batch 8: 13.216 W at 1228.8/s = 10.755 mJ, the lowest
    assert doc["best"]["config"]["gpu_freq_hz"] == 921600000 and doc["best"]["config"]["batch_size"] == 8
    assert doc["best"]["energy_per_inference_mj"] == pytest.approx(13216.0 / 1228.8, rel=1e-4)
    assert doc["ignored_columns"] == []
    text = " ".join(cli.invoke(app, ["import", str(src), "--out", str(out)]).output.split())
    assert "gpu_freq: its header has no unit; read as MHz" in text and "--map 'gpu_freq=gpu_freq_khz'" in text
    # the same file in Hz and W reads the same settings
    plain = write_csv(tmp_path / "hz.csv", ["gpu_freq", "power", "fps"],
                      [[614400000, 5.0, 10.0], [921600000, 6.0, 15.0]])
    doc = invoke("import", str(plain), "--out", str(tmp_path / "hz"))
    assert doc["knobs"] == {"gpu_freq_hz": [614400000, 921600000]}
    assert doc["units_inferred"]["power"]["unit"] == "W" and doc["best_cost"] == pytest.approx(0.4)
    # values that carry their unit need no guess, and an empty clock column is absent, not guessed
    own = write_csv(tmp_path / "own.csv", ["gpu_clock", "cpu_freq", "power_w", "fps"],
                    [["614.4MHz", "", 5.0, 10.0], ["921.6MHz", "", 6.0, 15.0]])
    doc = invoke("import", str(own), "--out", str(tmp_path / "own"))
    assert doc["knobs"] == {"gpu_freq_hz": [614400000, 921600000]} and doc["absent"] == ["cpu_freq_khz"]
    assert doc["units_inferred"] == {}
    # tegrastats' input rail is the board's power; one rail's (the GPU's) is not
    rails = write_csv(tmp_path / "rails.csv", ["gpu_freq_hz", "VDD_IN", "GPU power (mW)", "fps"],
                      [[1, 5000.0, 900.0, 10.0], [2, 6000.0, 1000.0, 15.0]])
    doc = invoke("import", str(rails), "--out", str(tmp_path / "rails"))
    assert doc["results"]["energy_per_inference_j"] == "VDD_IN / fps" and doc["best_cost"] == pytest.approx(0.4)
    assert "GPU power (mW)" in doc["ignored_columns"]
    # a column in words edgetune does not read that splits one setting's repeats is pointed out
    hidden = write_csv(tmp_path / "h.csv", ["gpu_speed", "batch_size", "power_w", "fps"],
                       [[s, b, 5.0 + b, 40.0 * b] for s in (614, 921) for b in (1, 4)])
    doc = invoke("import", str(hidden), "--out", str(tmp_path / "h"))
    assert doc["differ_within_repeats"] == ["gpu_speed"] and doc["repeats"] == {"min": 2, "max": 2}
    # totals: an energy and a duration over a count of images (never a sensor's sample count)
    totals = write_csv(tmp_path / "t.csv", ["gpu_freq_mhz", "Energy (J)", "images", "duration (s)", "samples"],
                       [[600, 10.0, 100, 5.0, 50], [900, 12.0, 100, 3.0, 30]])
    doc = invoke("import", str(totals), "--out", str(tmp_path / "t"))
    assert doc["results"]["energy_per_inference_j"] == "Energy (J) / images"
    assert doc["results"]["time_per_inference_s"] == "duration (s) / images"
    assert doc["best"]["energy_per_inference_mj"] == pytest.approx(100.0) and doc["ignored_columns"] == ["samples"]
    # "inference (s)" is a duration, not a rate: no result to derive energy from
    duration = write_csv(tmp_path / "d.csv", ["gpu_freq_hz", "power_w", "inference (s)"],
                         [[1, 5.0, 0.1], [2, 6.0, 0.2]])
    result = cli.invoke(app, ["import", str(duration), "--out", str(tmp_path / "d")])
    assert result.exit_code == 1 and "no result columns" in str(result.exception)


def test_a_spreadsheets_csv_reads_as_the_same_table(tmp_path):
    """What spreadsheets and loggers save as CSV: Windows-1252 and UTF-16 text, semicolons
    and decimal commas (a locale that writes 2,5), tabs, comment lines before the header
    (numpy's savetxt puts the header itself in one), trailing empty columns and empty rows,
    "energy/inference (mJ)" and "conc" as headers. Each reads as the plain file does; a
    value under no header is an error on its line."""
    settings = [(614.4, c, 4.0 + 0.5 * c, 3.0 * c) for c in (1, 2, 4)] + [(921.6, c, 5.0 + 0.5 * c, 4.0 * c)
                                                                         for c in (1, 2, 4)]
    plain = write_csv(tmp_path / "plain.csv", ["gpu_freq_mhz", "concurrency", "power_w", "throughput_ips"],
                      settings)
    want = invoke("import", str(plain), "--out", str(tmp_path / "plain"), "--workload", "w")
    assert want["source"]["format"] == {"encoding": "utf-8", "delimiter": ",", "decimal": ".", "comment_lines": 0}

    def same(name: str, text: str, fmt: dict, encoding: str = "utf-8") -> None:
        src = tmp_path / name
        src.write_text(text, encoding=encoding)
        doc = invoke("import", str(src), "--out", str(tmp_path / (name + ".run")), "--workload", "w")
        assert doc["knobs"] == want["knobs"] and doc["ignored_columns"] == [], name
        assert doc["best"]["config"] == want["best"]["config"] and doc["best_cost"] == pytest.approx(
            want["best_cost"]), name
        assert doc["source"]["format"] == fmt, name

    semi = "GPU freq (MHz);Concurrency;Power (W);Throughput (inf/s)\n" + "".join(
        ";".join(str(v).replace(".", ",") for v in row) + "\n" for row in settings)
    same("semi.csv", semi, {"encoding": "utf-8", "delimiter": ";", "decimal": ",", "comment_lines": 0})
    tabs = "# board: Jetson Nano, JetPack 4.6\n\n# power: VDD_IN\ngpu_freq_mhz\tconcurrency\tpower_w\tfps\n" + "".join(
        "\t".join(str(v) for v in row) + "\n" for row in settings)
    same("tabs.tsv", tabs, {"encoding": "utf-8", "delimiter": "\t", "decimal": ".", "comment_lines": 2})
    # a spreadsheet's trailing separators and an empty row; energy per inference in mJ, "conc"
    excel = "gpu (MHz),conc,Energy/inference [mJ],,\r\n" + "".join(
        f"{g},{c},{1000 * p / t},,\r\n" + (",,,,\r\n" if c == 2 else "") for g, c, p, t in settings)
    same("excel.csv", excel, {"encoding": "utf-8", "delimiter": ",", "decimal": ".", "comment_lines": 0})
    # a Windows spreadsheet's code page ("°C" is not UTF-8 there), and its UTF-16 "Unicode text"
    windows = "GPU freq (MHz),Concurrency,Power (W),Throughput (inf/s),Temp (°C)\r\n" + "".join(
        ",".join(str(v) for v in row) + ",41\r\n" for row in settings)
    same("cp1252.csv", windows, {"encoding": "cp1252", "delimiter": ",", "decimal": ".", "comment_lines": 0},
         "cp1252")
    same("utf16.txt", tabs, {"encoding": "utf-16", "delimiter": "\t", "decimal": ".", "comment_lines": 2}, "utf-16")
    # numpy's savetxt: the header is a comment above rows of numbers
    np.savetxt(tmp_path / "np.csv", np.array(settings), delimiter=",", fmt="%g",
               header="A sweep on the bench\ngpu_freq_mhz,concurrency,power_w,throughput_ips")
    same("np.csv", (tmp_path / "np.csv").read_text(),
         {"encoding": "utf-8", "delimiter": ",", "decimal": ".", "comment_lines": 1})
    result = cli.invoke(app, ["import", str(tmp_path / "semi.csv"), "--out", str(tmp_path / "s2")])
    text = " ".join(result.output.split())
    assert "read as: fields separated by semicolons; decimal commas" in text
    # a decimal point anywhere means the commas are not decimal: "1,5" stays text, and says so
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("gpu_freq_mhz;rig;power_w;fps\n614.4;1,5;5.0;10\n921.6;1,5;6.0;15\n", encoding="utf-8")
    assert invoke("import", str(mixed), "--out", str(tmp_path / "m"))["context"] == {"rig": "1,5"}
    # the number of a line is the file's, comment lines counted
    bad = tmp_path / "bad.csv"
    bad.write_text("# a note\ngpu_freq_hz,batch_size,energy_per_inference_j\n1,8,1.0\n2,eight,1.1\n")
    result = cli.invoke(app, ["import", str(bad), "--out", str(tmp_path / "b")])
    assert result.exit_code == 1 and "line 4: batch_size is 'eight'" in str(result.exception)
    sheet = tmp_path / "book.xlsx"
    sheet.write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00gpu_freq_hz,power_w\n")
    result = cli.invoke(app, ["import", str(sheet), "--out", str(tmp_path / "xl")])
    assert result.exit_code == 1 and "is not text" in str(result.exception)
    extra = tmp_path / "extra.csv"
    extra.write_text("gpu_freq_hz,energy_per_inference_j\n1,1.0\n2,1.1,7\n")
    result = cli.invoke(app, ["import", str(extra), "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "line 3 has a value in column 3, which has no header" in str(result.exception)
    assert not (tmp_path / "x" / "trials.csv").exists()


def test_a_recorded_power_mode_is_a_set_of_presets_not_a_scale(tmp_path):
    """nvpmodel mode ids are numbers, but mode 3 is not between modes 2 and 4: replayed, the
    power mode is an unordered knob, as on a live board, while the numeric knobs beside it
    stay ordered."""
    rows = [[m, c, (1.0 + 0.1 * ((m * 5) % 7)) * (1 + 1.0 / c)] for m in range(6) for c in (1, 2, 4, 8)]
    src = write_csv(tmp_path / "modes.csv", ["nvpmodel_mode", "concurrency", "energy_per_inference_j"], rows)
    out = tmp_path / "run"
    doc = invoke("import", str(src), "--out", str(out), "--workload", "m")
    assert doc["knobs"]["power_mode"] == [0, 1, 2, 3, 4, 5]
    board = ReplayBoard(out)
    knobs = {k.name: k for k in [*board.knobs(), *board.workload_knobs("m")]}
    assert knobs["power_mode"].ordered is False and knobs["concurrency"].ordered is True


def test_a_recording_is_found_by_its_model_name_less_deployment_qualifiers(tmp_path):
    """perf_analyzer-style names say how a model was served (``_tf_fp32_triton_dynbatch``):
    the model's own name finds the recording; another model's, or a size or variant
    (``bert`` for ``bert_tiny``), does not, and the error names what was recorded."""
    rows = [[b, 1.0 / b] for b in (1, 2, 4)]
    served = "inception_v3_tf_fp32_triton_dynbatch"
    for recorded, asked, plays in [(served, "inception_v3", True),
                                   (served, served, True),
                                   ("resnet18-onnx-int8", "resnet18", True),
                                   (served, "inception", False),
                                   ("bert_tiny", "bert", False),
                                   ("bert_tiny_fp16", "bert", False),
                                   ("resnet18", "resnet", False)]:
        src = write_csv(tmp_path / "w.csv", ["workload", "batch_size", "energy_per_inference_j"],
                        [[recorded, *r] for r in rows])
        out = tmp_path / recorded
        invoke("import", str(src), "--out", str(out))
        board = ReplayBoard(out)
        assert board.plays(asked) is plays, (recorded, asked)
        if plays:
            assert [k.name for k in board.workload_knobs(asked)] == ["batch_size"]
        else:
            with pytest.raises(Exception, match=f"recorded workload '{recorded}', not '{asked}'"):
                board.workload_knobs(asked)


def test_importing_again_replaces_an_import_but_never_a_sweep(tmp_path):
    src = write_csv(tmp_path / "a.csv", ["batch_size", "energy_per_inference_j"], [[1, 0.5], [2, 0.4]])
    out = tmp_path / "run"
    invoke("import", str(src), "--out", str(out))
    write_csv(src, ["batch_size", "energy_per_inference_j"], [[1, 0.5], [2, 0.4], [4, 0.3]])
    doc = invoke("import", str(src), "--out", str(out))
    assert doc["space_size"] == 3 and len(read_trials(out)) == 3
    sweep = tmp_path / "sweep"
    invoke("sweep", "--board", "sim:jetson-nano", "--workload", "alexnet", "--out", str(sweep), "--no-plots",
           "--cpu-freqs", "1479MHz", "--gpu-freqs", "614.4MHz,921.6MHz", "--batch-sizes", "16")
    result = subprocess.run([sys.executable, "-m", "tuner.cli.main", "import", str(src), "--out", str(sweep)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "already holds a run (sweep)" in result.stderr


@pytest.mark.parametrize("header,rows,extra,message", [
    (None, None, [], "does not exist"),
    (["gpu_freq_hz", "throughput_ips", "latency_s"], [[1, 2, 3], [2, 3, 4]], [], "no result columns"),
    (["gpu_freq_hz", "batch_size", "energy_per_inference_j"], [[1, 8, 1.0], [2, "eight", 1.1]], [],
     "line 3: batch_size is 'eight', not a number"),
    (["gpu_freq_hz", "energy_per_inference_j"], [[1, 1.0], [2, 1.1]], ["--map", "Power=power_w"],
     "--map names column 'Power', which"),
    (["gpu_freq_hz", "energy_per_inference_j"], [[1, 1.0], [2, "n/a"]], [], "line 3: energy_per_inference_j"),
    (["gpu_freq_hz", "concurrency", "energy_per_inference_j"], [[1, 1, 1.0], [2, "", 1.1]], [],
     "knob column concurrency is empty on line(s) 3"),
    (["gpu_freq_hz", "energy_per_inference_j"], [[1, 1.0], [1, 1.1]], [], "varies no knob"),
    (["gpu_freq_hz", "energy_per_inference_j"], [[1, 1.0], [2, 1.1]], ["--map", "gpu_freq_hz"], "--map takes"),
    (["gpu_freq_hz", "energy_per_inference_j"], [[1, 1.0], [2, -1.1]], [], "must be positive"),
])
def test_bad_input_is_a_one_line_error(tmp_path, header, rows, extra, message):
    src = tmp_path / "in.csv"
    if header is not None:
        write_csv(src, header, rows)
    proc = subprocess.run([sys.executable, "-m", "tuner.cli.main", "import", str(src), "--out", str(tmp_path / "o"),
                           *extra], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "o" / "trials.csv").exists()


def test_the_text_output_says_how_each_quantity_was_derived(real_surface, tmp_path):
    result = cli.invoke(app, ["import", str(real_surface), "--out", str(tmp_path / "r"), "--workload", "inception_v3"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for part in ("143 recorded configs", "pinned: power_mode=0", "absent (empty columns): cpu_freq_khz, emc_freq_hz",
                 "batch_size is a one-to-one copy of concurrency", "time_per_inference_s: 1 / throughput_inf_per_s",
                 "measured (not simulated)", "edgetune bench --board replay:"):
        assert part in text, part
    assert math.isfinite(json.loads((tmp_path / "r" / "summary.json").read_text())["best_cost"])


def test_on_the_shared_real_surface_the_model_keeps_every_recorded_value(real_surface, tmp_path):
    """Replayed, a recording of single runs returns the same number every time: the GP's
    posterior mean at each measured config must stay on its reading after every trial. A
    fit whose hyperparameters were tuned to fewer points once pulled a config measured 3 %
    below its neighbours 3 % up (seed 7), and the recommendation left it; a fit that an
    observation contradicts is now re-tuned at once."""
    from tuner.app import explore
    from tuner.objective import Objective
    from tuner.runner import RunPolicy, TrialRunner
    from tuner.search import plan_space
    from tuner.strategies import make_strategy

    import_csv(real_surface, tmp_path / "run", workload="inception_v3")
    runner = TrialRunner(ReplayBoard(tmp_path / "run"), "inception_v3", RunPolicy())
    space, _ = plan_space(runner, {}, ())
    for seed in range(10):
        strategy = make_strategy("bo", space, seed=seed)
        off = []

        def check(step, strategy=strategy, off=off) -> None:
            if strategy.gp.model is None:
                return  # not fitted yet
            rows = np.flatnonzero(strategy.measured())
            readings = np.array([math.log(np.mean(strategy.costs[r])) for r in rows])
            off.append(float(np.max(np.abs(strategy.gp.mean(rows) - readings))))

        explore(runner, space, Objective(), lambda strategy=strategy: strategy, 15, run=None, on_step=check,
                reference_batches=())
        assert max(off) < 0.01, (seed, off)  # the readings' own noise: ~0.3 %
