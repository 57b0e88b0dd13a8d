"""Benchmarks: every figure as a ratio against a baseline measured in the same run.

Run them all with ``python3 -m uv run python -m benchmarks`` (``--help`` for options).
Absolute times depend on the machine and its load; the ratios are what to compare.

Adding a benchmark: put a module ``benchmarks/bench_NAME.py`` here whose functions are
decorated with :func:`benchmarks.registry.benchmark` and return
:class:`benchmarks.registry.Result` rows; ``python -m benchmarks`` imports every
``bench_*`` module and runs what they register.
"""
