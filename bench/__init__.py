"""Benchmarks: `make bench` writes results to bench/results/."""
