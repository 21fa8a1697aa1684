"""Boards: Jetson sysfs, generic Linux, NVIDIA dGPU (NVML), simulated."""
