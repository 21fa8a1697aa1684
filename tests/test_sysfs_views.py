"""Every view a real Jetson gives of its INA3221 monitors, in every emulated tree.

Tools reach the same monitor differently: jetson-stats lists
``/sys/bus/i2c/devices/*/name``, most scripts use the driver path
``/sys/bus/i2c/drivers/<driver>/<bus>-<addr>``, hwmon tools ``/sys/class/hwmon``.
An emulated tree must read the same through all of them (one device directory,
relative links), and discovery must work from whichever view a board has.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuner.boards.ina3221 import Ina3221Source, discover_rails
from tuner.cli.main import app
from tuner.sim.live import Activity, LiveSimulator, write_activity
from tuner.sim.profiles import PROFILES
from tuner.sysfs import Sysfs

# boards with power monitors (the Nano 2GB has none: tests/test_thor.py covers it)
TREES = [(name, jp) for name, p in PROFILES.items() if p.has_power_monitor for jp in p.jetpacks]
IDS = [f"{name}-jp{jp}" for name, jp in TREES]


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read().strip()


def generic_rails(root: Path) -> list[tuple[str, float]]:
    """(rail, mW) as a tool that knows nothing of edgetune finds them (jetson-stats' way):
    i2c devices named ina3221x / ina3221, then their iio or hwmon directory; a Thor's
    carrier-board INA238 (name ina238) by its hwmon label and power1_input (µW)."""
    found = []
    for dev in sorted(Path(root, "sys/bus/i2c/devices").glob("*")):
        name = dev / "name"
        if name.is_file() and _read(str(name)) == "ina238":
            for hw in sorted(dev.glob("hwmon/hwmon*")):
                found.append((_read(f"{hw}/label"), float(_read(f"{hw}/power1_input")) / 1000))
            continue
        if not name.is_file() or _read(str(name)) not in ("ina3221x", "ina3221"):
            continue
        for iio in sorted(dev.glob("iio:device*")):
            for rail_name in sorted(iio.glob("rail_name_*")):
                i = rail_name.name.rsplit("_", 1)[1]
                found.append((_read(str(rail_name)), float(_read(f"{iio}/in_power{i}_input"))))
        for hw in sorted(dev.glob("hwmon/hwmon*")):
            for label in sorted(hw.glob("in*_label")):
                i = re.fullmatch(r"in(\d+)_label", label.name).group(1)  # type: ignore[union-attr]
                text = _read(str(label))
                if text == "NC" or not os.path.exists(f"{hw}/curr{i}_input"):  # unconnected; in7 is the shunt sum
                    continue
                found.append((text, float(_read(f"{hw}/in{i}_input")) * float(_read(f"{hw}/curr{i}_input")) / 1000))
    return found


def probe_rails(root: Path) -> list[tuple[str, float]]:
    res = CliRunner().invoke(app, ["probe", "--root", str(root), "--json"])
    assert res.exit_code == 0, (res.output, res.exception)
    return [(r["name"], r["power_mw"]) for r in json.loads(res.stdout)["rails"]]


def connected(profile: str) -> list[str]:
    """The INA3221 rails, then the carrier-board input monitor (Thor's INA238 VIN)."""
    p = PROFILES[profile]
    return [label for labels in p.rails for label in labels if label != "NC"] + (
        [p.input_monitor.label] if p.input_monitor else [])


@pytest.mark.parametrize("profile, jetpack", TREES, ids=IDS)
def test_a_generic_walk_of_the_i2c_devices_reads_what_probe_reads(make_tree, profile, jetpack):
    root = make_tree(profile, jetpack)
    generic = generic_rails(root)
    probed = probe_rails(root)
    assert [n for n, _ in generic] == connected(profile)  # each rail once, none missing
    assert sorted(n for n, _ in probed) == sorted(connected(profile))
    probed_mw = dict(probed)
    for name, mw in generic:
        assert probed_mw[name] == pytest.approx(mw, abs=1.0)
    assert any(mw > 0 for _, mw in generic)


@pytest.mark.parametrize("profile, jetpack", TREES, ids=IDS)
def test_each_monitor_is_one_device_directory_reached_through_relative_links(make_tree, profile, jetpack):
    root = make_tree(profile, jetpack)
    real_root = root.resolve()
    links = []
    for dirpath, dirs, files in os.walk(root):  # does not follow links: each is seen once
        for entry in dirs + files:
            path = Path(dirpath, entry)
            if path.is_symlink():
                links.append(path)
                assert not os.path.isabs(os.readlink(path)), path
                target = path.resolve()
                assert target.exists(), f"{path} dangles"
                assert target == real_root or real_root in target.parents, f"{path} leaves the tree"
    driver = "ina3221x" if jetpack == "4" else "ina3221"
    addrs = [f"{PROFILES[profile].ina_bus}-{0x40 + k:04x}" for k in range(len(PROFILES[profile].rails))]
    for addr in addrs:
        by_bus = root / "sys/bus/i2c/devices" / addr
        by_driver = root / "sys/bus/i2c/drivers" / driver / addr
        assert by_bus.is_symlink() and by_driver.is_symlink()
        dev = by_bus.resolve()
        assert by_driver.resolve() == dev
        assert str(dev).startswith(str(real_root / "sys/devices") + os.sep)  # a real directory, not a link
        assert _read(str(dev / "name")) == driver
        assert (dev / "driver").resolve() == (root / "sys/bus/i2c/drivers" / driver).resolve()
        if jetpack == "4":
            (iio,) = dev.glob("iio:device*")
            assert _read(str(iio / "name")) == "ina3221x"
            assert (root / "sys/bus/iio/devices" / iio.name).resolve() == iio
        else:
            (hw,) = dev.glob("hwmon/hwmon*")
            assert _read(str(hw / "name")) == "ina3221"
            assert (hw / "device").resolve() == dev
            assert (root / "sys/class/hwmon" / hw.name).resolve() == hw
    assert links


@pytest.mark.parametrize(
    "profile, jetpack, device",
    [  # real boards' device directories (sources in tuner/sim/tree.py)
        ("jetson-nano", "4", "/sys/devices/50000000.host1x/546c0000.i2c/i2c-6/6-0040"),
        ("jetson-tx2", "4", "/sys/devices/3160000.i2c/i2c-0/0-0041"),
        ("jetson-xavier-nx", "4", "/sys/devices/c250000.i2c/i2c-7/7-0040"),
        ("jetson-agx-orin", "5", "/sys/devices/platform/c240000.i2c/i2c-1/1-0041"),
        ("jetson-orin-nano", "6", "/sys/devices/platform/bus@0/c240000.i2c/i2c-1/1-0040"),
    ],
)
def test_monitors_live_where_real_boards_have_them(make_tree, profile, jetpack, device):
    root = make_tree(profile, jetpack)
    addr = device.rsplit("/", 1)[1]
    assert (root / "sys/bus/i2c/devices" / addr).resolve() == (root / device.lstrip("/")).resolve()
    assert not (root / device.lstrip("/")).is_symlink()


def _prune(root: Path, keep: str) -> None:
    """Delete every view of the monitors but one: 'driver', 'devices' or 'class'
    (/sys/class/hwmon on JetPack 5+, /sys/bus/iio/devices on JetPack 4)."""
    views = {
        "driver": [p for d in ("ina3221x", "ina3221", "ina238")
                   for p in (root / "sys/bus/i2c/drivers" / d).glob("*-00*")],
        "devices": list((root / "sys/bus/i2c/devices").glob("*")),
        "class": list((root / "sys/class/hwmon").glob("*")) + list((root / "sys/bus/iio/devices").glob("*")),
    }
    assert all(views.values()), views  # the tree has every view to begin with
    for view, paths in views.items():
        if view != keep:
            for path in paths:
                path.unlink()


@pytest.mark.parametrize("keep", ["driver", "devices", "class"])
@pytest.mark.parametrize("profile, jetpack", TREES, ids=IDS)
def test_discovery_works_from_any_single_view(make_tree, profile, jetpack, keep):
    root = make_tree(profile, jetpack)
    full = [r.name for r in discover_rails(Sysfs(root))]
    assert full == connected(profile)  # all views present: still each rail once
    before = Ina3221Source(Sysfs(root), discover_rails(Sysfs(root))).read()
    _prune(root, keep)
    rails = discover_rails(Sysfs(root))
    assert [r.name for r in rails] == full
    assert Ina3221Source(Sysfs(root), rails).read() == before


@pytest.mark.parametrize("profile, jetpack", [("jetson-nano", "4"), ("jetson-agx-orin", "5")])
def test_the_live_simulator_writes_what_every_view_reads(make_tree, profile, jetpack):
    root = make_tree(profile, jetpack)
    before = dict(generic_rails(root))
    write_activity(root, Activity("resnet18", 16, 1, True))  # move the rails off their idle values
    sim = LiveSimulator(root, rate_hz=50)
    sim.step(0.1)
    after = dict(generic_rails(root))
    assert after != before
    src = Ina3221Source(Sysfs(root), discover_rails(Sysfs(root))).read()
    assert sorted(after) == sorted(src)
    for name, mw in after.items():
        assert src[name] == pytest.approx(mw, abs=1.0)
    # with only the i2c devices view left, the simulator still finds and animates the rails
    _prune(root, "devices")
    write_activity(root, Activity())  # idle again
    sim = LiveSimulator(root, rate_hz=50)
    assert [r.name for r in sim.rails] == connected(profile)
    assert all(r.power_file or r.current_file for r in sim.rails)
    sim.step(0.1)
    idle = dict(generic_rails(root))
    assert idle != after
    src = Ina3221Source(Sysfs(root), sim.rails).read()
    for name, mw in idle.items():
        assert src[name] == pytest.approx(mw, abs=1.0)
