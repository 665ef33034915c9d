"""Throughput regression testing on top of pytest-benchmark (`suite bench`).

tests/benchmarks/ holds the benchmarks; each throughput benchmark is timed interleaved with a
fixed reference workload (reference, interleave, timer), so a run records, besides absolute
times, its time relative to the reference in the same rounds. `run` invokes pytest on a checkout
and finds saved baselines, `compare` judges a run against a baseline (medians, Mann-Whitney U),
`revs` measures a git revision and the working tree interleaved in one run.
"""
