"""Frequency policies a workload can be measured under: the kernel's DVFS governors
(the baselines), a pinned tuned config, and the online descent governor; and
the comparison harness behind ``edgetune compare``."""
