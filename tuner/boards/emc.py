"""External memory controller (EMC) clock through BPMP debugfs (optional).

Only where debugfs is mounted and exposes ``bpmp/debug/clk/emc`` (Xavier,
Orin, TX2 with root). Pinning locks the rate against BPMP's own requests
(``mrq_rate_locked``) and writes ``rate``, as jetson_clocks does. The rate
list comes from the upstream tegra186-emc debugfs (``emc/available_rates``,
Hz) where present; otherwise only the min and max rates are offered.
"""

from __future__ import annotations

from tuner.errors import ConfigError
from tuner.sysfs import Sysfs, Write

EMC_CLK = "/sys/kernel/debug/bpmp/debug/clk/emc"
EMC_RATES = "/sys/kernel/debug/emc/available_rates"


class EmcControl:
    """The EMC (memory) clock through BPMP debugfs: its rates (Hz), and a pin that locks the rate
    first so BPMP's own requests cannot move it."""

    def __init__(self, fs: Sysfs) -> None:
        self.fs = fs
        rates = {int(x) for x in (fs.try_read(EMC_RATES) or "").split() if x.isdigit()}
        if not rates:
            for leaf in ("min_rate", "max_rate"):
                text = fs.try_read(f"{EMC_CLK}/{leaf}")
                if text and text.isdigit():
                    rates.add(int(text))
        self.frequencies_hz = sorted(rates)

    @staticmethod
    def present(fs: Sysfs) -> bool:
        return fs.exists(f"{EMC_CLK}/rate") and fs.exists(f"{EMC_CLK}/mrq_rate_locked")

    def cur_freq(self) -> int:
        return self.fs.read_int(f"{EMC_CLK}/rate")

    def knob_files(self) -> list[str]:
        return [f"{EMC_CLK}/mrq_rate_locked", f"{EMC_CLK}/rate"]

    def plan_pin(self, freq_hz: int) -> list[Write]:
        if freq_hz not in self.frequencies_hz:
            raise ConfigError(f"emc_freq_hz={freq_hz} is not one of the EMC rates {self.frequencies_hz}")
        return [(f"{EMC_CLK}/mrq_rate_locked", "1"), (f"{EMC_CLK}/rate", str(freq_hz))]
