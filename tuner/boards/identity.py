"""Which Jetson this is: device-tree model/compatible and the L4T release.

The compatible strings name the module part number (p3767-0000 is Orin NX
16GB, p3668 Xavier NX, ...), which is more reliable than the free-text model.
jetson-stats knows more (carrier boards, every SKU); edgetune needs only the
profile that selects emulation tables and simulator calibration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tuner.sysfs import Sysfs

MODEL_PATHS = ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model")
COMPATIBLE_PATHS = ("/proc/device-tree/compatible", "/sys/firmware/devicetree/base/compatible")
L4T_RELEASE = "/etc/nv_tegra_release"

# (compatible substring, profile); first match wins, most specific first. Thor: the T5000
# module is p3834-0008 on the p4071-0000 carrier (SoC tegra264; jetson-stats issue #711);
# the Nano 2GB is p3448-0003 on the p3542-0000 carrier, matched before the Nano's p3448.
_COMPATIBLE = (
    ("p3834", "jetson-agx-thor"),
    ("tegra264", "jetson-agx-thor"),
    ("p3542", "jetson-nano-2gb"),
    ("jetson-nano-2gb", "jetson-nano-2gb"),
    ("p3767-0003", "jetson-orin-nano"),
    ("p3767-0004", "jetson-orin-nano"),
    ("p3767-0005", "jetson-orin-nano"),
    ("p3767", "jetson-orin-nx"),
    ("p3701", "jetson-agx-orin"),
    ("p3668", "jetson-xavier-nx"),
    ("p2888", "jetson-agx-xavier"),
    ("p3310", "jetson-tx2"),
    ("p2771", "jetson-tx2"),
    ("p3448", "jetson-nano"),
    ("p3450", "jetson-nano"),
    ("tegra234", "jetson-orin-nx"),
    ("tegra194", "jetson-agx-xavier"),
    ("tegra186", "jetson-tx2"),
    ("tegra210", "jetson-nano"),
)

_MODEL = (
    ("agx thor", "jetson-agx-thor"),
    ("thor", "jetson-agx-thor"),
    ("nano 2gb", "jetson-nano-2gb"),
    ("orin nano", "jetson-orin-nano"),
    ("orin nx", "jetson-orin-nx"),
    ("agx orin", "jetson-agx-orin"),
    ("xavier nx", "jetson-xavier-nx"),
    ("agx xavier", "jetson-agx-xavier"),
    ("jetson-agx", "jetson-agx-xavier"),
    ("tx2", "jetson-tx2"),
    ("quill", "jetson-tx2"),
    ("nano", "jetson-nano"),
)

# L4T major -> JetPack major (34 was a JetPack 5 developer preview; R38 is JetPack 7 on
# Thor, R39 JetPack 7.2 on Orin and Thor).
_JETPACK = {32: "4", 34: "5", 35: "5", 36: "6", 38: "7", 39: "7"}


@dataclass(frozen=True)
class Identity:
    """What a board says it is: device-tree model and compatible strings, the L4T release (``32.7.4``)
    and the profile they map to (None when unknown)."""

    model: str | None
    compatible: tuple[str, ...]
    l4t: str | None
    profile: str | None

    @property
    def jetpack(self) -> str | None:
        if not self.l4t:
            return None
        return _JETPACK.get(int(self.l4t.split(".")[0]))

    @property
    def is_jetson(self) -> bool:
        return self.l4t is not None or any(c.startswith("nvidia,tegra") for c in self.compatible)


def parse_l4t(text: str) -> str | None:
    """``# R32 (release), REVISION: 7.4, ...`` -> ``32.7.4``."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def read_identity(fs: Sysfs) -> Identity:
    """Identify the board: the profile from the compatible strings (module part numbers, most specific
    first), from the free-text model only when none matches."""
    model = next((t for t in (fs.try_read(p) for p in MODEL_PATHS) if t), None)
    compat_raw = next((t for t in (fs.try_read(p) for p in COMPATIBLE_PATHS) if t), "")
    compatible = tuple(compat_raw.split())
    release = fs.try_read(L4T_RELEASE)
    l4t = parse_l4t(release) if release else None
    profile = None
    joined = " ".join(compatible)
    for key, name in _COMPATIBLE:
        if key in joined:
            profile = name
            break
    if profile is None and model:
        low = model.lower()
        profile = next((name for key, name in _MODEL if key in low), None)
    return Identity(model, compatible, l4t, profile)
