"""Benchmarks: speed and memory targets, measured here rather than in timed tests (`make bench`)."""
