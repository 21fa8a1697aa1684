"""Inference workloads behind one interface (:mod:`workloads.base`)."""
