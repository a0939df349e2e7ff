"""``python -m benchmarks``: which modules are benchmarks, and one run through the runner."""

from __future__ import annotations

import textwrap
from pathlib import Path

from benchmarks.__main__ import (
    SUITE,
    TOOLS,
    Benchmark,
    Outcome,
    discover,
    main,
    missing_input,
    run_one,
    summary,
)


def test_every_benchmark_module_has_its_sizes_and_helpers_are_not_benchmarks():
    found = discover()
    assert set(found) == set(SUITE)
    assert {"dtw_matrix", "etl_throughput", "nightly", "lstm_training"} <= set(found)
    assert not {"public_profiles", "public_sources", "__main__", *TOOLS} & set(found)
    assert all(b.quick for b in SUITE.values())  # each has a small size for --quick


def test_a_module_is_a_benchmark_when_it_runs_as_a_script(tmp_path: Path):
    (tmp_path / "fast.py").write_text(
        'def main():\n    pass\n\n\nif __name__ == "__main__":\n    main()\n'
    )
    (tmp_path / "helper.py").write_text("def load():\n    return 1\n")
    (tmp_path / "_private.py").write_text('if __name__ == "__main__":\n    pass\n')
    assert discover(tmp_path) == ["fast"]


def test_the_runner_prints_ratio_lines_and_a_failure_is_counted(tmp_path: Path):
    (tmp_path / "good.py").write_text(
        textwrap.dedent("""
        print("# warming up")
        print("case=matrix ours_cpu_s=1.0 ref_cpu_s=2.0 ratio=2.00")
        print("# loadavg 1.0")
        print()
        print("step   cpu_ratio")
        print("build  0.5")
        print()
        print("done")
        """)
    )
    (tmp_path / "bad.py").write_text("raise SystemExit(3)\n")
    good = run_one("good", [], tmp_path / "logs" / "good.log", 60, folder=tmp_path)
    bad = run_one("bad", [], tmp_path / "logs" / "bad.log", 60, folder=tmp_path)
    assert good.status == "ok"
    assert good.lines == [
        "case=matrix ours_cpu_s=1.0 ref_cpu_s=2.0 ratio=2.00",
        "step   cpu_ratio",
        "build  0.5",
    ]
    assert bad.status == "failed (exit 3)" and bad.failed and not good.failed
    (tmp_path / "slow.py").write_text("import time\n\ntime.sleep(60)\n")
    slow = run_one("slow", [], tmp_path / "logs" / "slow.log", 1, folder=tmp_path)
    assert slow.status == "timed out after 1 s" and slow.failed and slow.seconds < 30
    assert "ratio=2.00" in (tmp_path / "logs" / "good.out").read_text()
    assert (tmp_path / "logs" / "good.log").read_text().startswith("$ ")
    skipped = Outcome("public", "skipped: needs .cache/x (fetch)")
    table = summary([good, bad, skipped]).splitlines()
    assert table[0].split() == ["benchmark", "seconds", "cpu_s", "status"]
    assert [row.split()[0] for row in table[1:4]] == ["good", "bad", "public"]
    assert table[-1].endswith("1 failed") and not skipped.failed


def test_a_benchmark_without_its_input_is_skipped(tmp_path: Path):
    needs = Benchmark(quick=("--quick",), full_needs={"data/public": "fetch it"})
    assert missing_input(needs, quick=True, root=tmp_path) == ""
    assert missing_input(needs, quick=False, root=tmp_path) == "needs data/public (fetch it)"
    (tmp_path / "data" / "public").mkdir(parents=True)
    assert missing_input(needs, quick=False, root=tmp_path) == ""


def test_one_real_benchmark_through_the_runner(tmp_path: Path, capsys):
    code = main(["--quick", "--logs", str(tmp_path), "statistical_baselines"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "DSHW (ours)" in out and "HW weekly (sm)" in out  # ours against statsmodels
    assert out.splitlines()[-1].startswith("1 benchmark(s) in ") and "0 failed" in out
    assert "DSHW (ours)" in (tmp_path / "statistical_baselines.out").read_text()


def test_an_unknown_benchmark_is_refused(capsys):
    assert main(["no_such_benchmark"]) == 2
    assert "no benchmark no_such_benchmark" in capsys.readouterr().err
