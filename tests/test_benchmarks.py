"""The benchmark runner: registry, ratios against targets, the printed table."""

from __future__ import annotations

import pytest

from benchmarks.__main__ import format_table, load_all, main
from benchmarks.registry import BENCHMARKS, Result, benchmark, interquartile_mean


def test_every_benchmark_module_registers_its_benchmarks():
    load_all()
    assert {"sse", "display", "wav", "relay", "live", "run", "suite"} <= set(BENCHMARKS)


def test_ratios_meet_or_miss_their_targets():
    assert Result("g", "f", 1.0, 1.0, "ms", 1.1).met is True
    assert Result("g", "f", 1.2, 1.0, "ms", 1.1).met is False
    assert Result("g", "f", 3.0, 2.0, "1/s", 1.0, higher_is_better=True).met is True
    assert Result("g", "f", 1.0, 2.0, "1/s", 1.0, higher_is_better=True).met is False
    assert Result("g", "f", 5.0, 1.0, "MB").met is None
    assert Result("g", "f", 1.0, 4.0, "ms").ratio == 0.25


def test_the_table_shows_each_ratio_and_whether_it_met_its_target():
    table = format_table(
        [
            Result("sse", "time to first chunk", 2.0, 2.0, "ms", 1.1, baseline_name="bare"),
            Result("display", "100 chunks", 30.0, 10.0, "µs/chunk", 2.0),
        ],
        markdown=True,
    )
    lines = table.splitlines()
    assert lines[0].startswith("| benchmark | figure | ours | baseline | ratio")
    assert "| 1.00x | <= 1.1x | ok |" in lines[2]
    assert "| 3.00x | <= 2x | MISSED |" in lines[3]


def test_a_duplicate_name_is_refused():
    load_all()
    with pytest.raises(ValueError, match="Two benchmarks"):
        benchmark("sse", "again")(lambda options: [])


def test_unknown_names_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["no-such-benchmark"])
    assert "unknown benchmark 'no-such-benchmark'" in capsys.readouterr().err


def test_interquartile_mean_drops_the_outer_quarters():
    assert interquartile_mean([1, 2, 3, 4, 100, 5, 6, 7]) == 4.5
    assert interquartile_mean([2.0]) == 2.0
    with pytest.raises(ValueError, match="at least one"):
        interquartile_mean([])
