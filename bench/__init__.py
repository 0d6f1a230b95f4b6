"""Benchmarks of relatorios against what a user would pick instead (`make bench`).

Benchmarks are not tests: they are never part of `make test` and never fail a build. They write
docs/benchmarks.md and docs/benchmarks.png (a quick run writes var/bench/quick/ instead).
"""
