"""The benchmark registry: what ``python -m benchmarks`` runs, and how results look.

A benchmark is a function taking :class:`Options` and returning :class:`Result` rows,
each a figure measured for the code under test and for its baseline in the same run::

    from benchmarks.registry import Options, Result, benchmark, median_time

    @benchmark("relay", "Browser relay vs a Flask-threaded relay")
    def relay(options: Options) -> list[Result]:
        ...
        return [Result("relay", "streams/s at 50 clients", ours, flask, "1/s",
                       higher_is_better=True, target=1.0)]
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "Options",
    "Result",
    "benchmark",
    "interquartile_mean",
    "median_time",
]


@dataclass(frozen=True)
class Options:
    """How hard to measure.

    Attributes:
        repeats: Measurements per figure; the median is kept.
        quick: Smaller workloads (for a smoke run, not for the README).
    """

    repeats: int = 5
    quick: bool = False


@dataclass(frozen=True)
class Result:
    """One figure for the code under test and its baseline, measured in the same run.

    Attributes:
        group: The benchmark's name, e.g. ``"display"``.
        figure: What was measured, e.g. ``"µs per chunk, 1,000 chunks"``.
        value: The code under test's figure, in ``unit``.
        baseline: The baseline's figure, in ``unit``.
        unit: Unit of both figures, e.g. ``"ms"``, ``"µs/chunk"``, ``"MB"``.
        target: The ratio to meet, or None for a figure shown for information.
        higher_is_better: True for throughputs: the target is then a minimum ratio
            (``value / baseline >= target``); otherwise a maximum.
        baseline_name: What the baseline is, e.g. ``"print loop"``.
    """

    group: str
    figure: str
    value: float
    baseline: float
    unit: str
    target: float | None = None
    higher_is_better: bool = False
    baseline_name: str = ""

    @property
    def ratio(self) -> float:
        """``value / baseline`` (infinite when the baseline is 0)."""
        return self.value / self.baseline if self.baseline else float("inf")

    @property
    def met(self) -> bool | None:
        """Whether the ratio meets the target; None without a target."""
        if self.target is None:
            return None
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark: its name, a one-line description and its function."""

    name: str
    description: str
    run: Callable[[Options], list[Result]]


#: Registered benchmarks by name, in registration order.
BENCHMARKS: dict[str, Benchmark] = {}


def benchmark(
    name: str, description: str
) -> Callable[[Callable[[Options], list[Result]]], Callable[[Options], list[Result]]]:
    """Register a benchmark function under ``name``.

    Raises:
        ValueError: Another benchmark already has this name.
    """

    def register(run: Callable[[Options], list[Result]]) -> Callable[[Options], list[Result]]:
        if name in BENCHMARKS:
            raise ValueError(f"Two benchmarks are named {name!r}.")
        BENCHMARKS[name] = Benchmark(name, description, run)
        return run

    return register


def median_time(repeats: int, action: Callable[[], object]) -> float:
    """Return the median wall time of ``repeats`` runs of ``action``, in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def interquartile_mean(values: Iterable[float]) -> float:
    """Return the mean of the middle half of ``values`` (the lowest and highest quarters cut).

    Robust to outliers like the median, and steadier than the median when the values
    fall in two clusters (a median then jumps from one to the other between runs).

    Raises:
        ValueError: ``values`` is empty.
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("interquartile_mean() needs at least one value")
    cut = len(ordered) // 4
    return statistics.fmean(ordered[cut : len(ordered) - cut])
