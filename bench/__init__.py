"""Benchmarks: `make bench` prints one figure per line as `name value unit`
(docs/architecture.md §8)."""
