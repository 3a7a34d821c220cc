"""Benchmark scripts (issue 8): run each with `python -m benchmarks.<name>`; see BENCHMARKS.md."""
