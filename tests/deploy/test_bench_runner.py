"""bench/run_all.py (`make bench`) knows every benchmark in bench/, and all of them run.

A new bench/*_bench.py that run_all.py does not list fails here, so `make bench` cannot
forget it; the quick run catches a benchmark that no longer runs against today's code.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"


def _run_all():
    if "run_all" not in sys.modules:  # its dataclasses look their module up there
        spec = importlib.util.spec_from_file_location("run_all", BENCH / "run_all.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["run_all"] = module
        spec.loader.exec_module(module)
    return sys.modules["run_all"]


def test_run_all_knows_every_benchmark():
    run_all = _run_all()
    listed = {b.script for b in run_all.BENCHMARKS}
    assert {p.name for p in BENCH.glob("*_bench.py")} <= listed
    # every other script in bench/ is a tool, named with the reason it is not run
    assert {p.name for p in BENCH.glob("*.py")} == listed | set(run_all.TOOLS)
    assert run_all.unknown_scripts() == []
    assert not listed & set(run_all.TOOLS)
    for bench in run_all.BENCHMARKS:
        assert (REPO / "docs" / bench.page).is_file(), bench.page
        assert bench.name in run_all.HEADLINES


def _fingerprint(*folders: Path) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(folder.glob("*")) if p.is_file()}


def test_quick_run_of_every_benchmark(tmp_path):
    """Every benchmark at small sizes; pages go to tmp_path, docs/ and bench/results/ stay
    as they are. MariaDB only where the suite has one (HELPDESK_TEST_MYSQL_URL)."""
    run_all = _run_all()
    before = _fingerprint(REPO / "docs", BENCH / "results")
    mysql = os.environ.get("HELPDESK_TEST_MYSQL_URL") or "none"
    done = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--quick", "--docs", str(tmp_path),
         "--mysql", mysql], cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert _fingerprint(REPO / "docs", BENCH / "results") == before

    overview = (tmp_path / "benchmarks.md").read_text()
    assert run_all.RUN_ALL_BEGIN in overview and run_all.RUN_ALL_END in overview
    assert "**quick smoke run**" in overview and "**failed**" not in overview
    for bench in run_all.BENCHMARKS:
        assert f"`bench/{bench.script}`" in overview
        page = (tmp_path / bench.page).read_text()
        assert page.count(run_all.RUN_ALL_BEGIN) == 1
    summary = done.stdout.split("=== summary", 1)[1]
    for bench in run_all.BENCHMARKS:
        assert f"{bench.name}: measured" in summary, summary
    if mysql == "none":
        assert "not measured: burst on MariaDB: no MariaDB given (--mysql none)" in summary
