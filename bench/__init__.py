"""Benchmarks: ``python -m bench`` (``make bench``) measures the floor, every path end to end and the
per-stage costs in one run; :mod:`bench.chaos` is the fault suite (separate)."""
