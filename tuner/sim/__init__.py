"""Simulated Jetson boards: profiles, emulated sysfs trees, (later) the device model.

Everything produced here is simulated and says so.
"""
