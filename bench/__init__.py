"""Benchmarks: `make bench` prints one figure per line as `name value unit` (DESIGN.md §9)."""
