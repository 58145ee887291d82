"""Random `kill -9` trials, as the issue tried them: kill `skyprep run` at a random moment of
one step, rerun, compare with an uninterrupted run. A measurement, not a test (the tests kill
at fixed points: tests/test_crash_rerun.py).

    .venv/bin/python tests/crash_trials.py --scale demo --step load --trials 7

A sandbox at the scale; the first night loaded once; a day passes; the baseline loads the
night (and reruns it); each trial copies the first night, starts the night's run, waits for
the step to start (the progress line of the step before it), sleeps a random share of the
step's duration in the baseline, sends SIGKILL, reruns, and compares every raw table with
the baseline. Prints one line per trial and a total.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_crash_rerun import Night, differences, duckdb_content, skyprep

from skyprep_sandbox import Sandbox, World

# the progress line that ends the step before each step (the run starts with extract)
STARTS_AFTER = {"extract": None, "normalize": "extract done", "load": "normalize done"}
ENDS_WITH = {"extract": "extract done", "normalize": "normalize done", "load": "load done"}


def timed_run(cwd: Path, env: dict[str, str], kill_after: tuple[str | None, float] | None) -> dict:
    """Run the night; note when each progress line came; SIGKILL `delay` s after `marker`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "skyprep_source.cli", "run", "--requests-per-minute", "off"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.monotonic()
    seen: dict[str, float] = {}
    killed = threading.Event()

    def kill_later(delay: float) -> None:
        time.sleep(delay)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            killed.set()

    if kill_after and kill_after[0] is None:
        threading.Thread(target=kill_later, args=(kill_after[1],), daemon=True).start()
    assert process.stderr is not None
    for line in process.stderr:
        for marker in ("extract done", "normalize done", "load done"):
            if f"[skyprep] {marker}" in line and marker not in seen:
                seen[marker] = time.monotonic() - started
                if kill_after and kill_after[0] == marker:
                    threading.Thread(target=kill_later, args=(kill_after[1],), daemon=True).start()
    code = process.wait()
    return {
        "code": code,
        "seen": seen,
        "killed": killed.is_set(),
        "seconds": time.monotonic() - started,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--step", choices=sorted(STARTS_AFTER), default="load")
    parser.add_argument("--trials", type=int, default=7)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="crash-trials-"))
    with Sandbox(World.generate(seed=7, scale=args.scale)) as sandbox:
        template = root / "night1"
        template.mkdir()
        from test_job import sandbox_environment

        assert skyprep(template, sandbox_environment(template, sandbox)).returncode == 0
        sandbox.advance(days=1)
        night = Night(sandbox, template, root)
        cwd, env = night.copy("baseline")
        timing = timed_run(cwd, env, None)
        assert timing["code"] == 0, timing
        assert skyprep(cwd, env).returncode == 0
        baseline = duckdb_content(cwd / "skyprep.duckdb")
        before = STARTS_AFTER[args.step]
        begin = timing["seen"].get(before, 0.0) if before else 0.0
        length = timing["seen"][ENDS_WITH[args.step]] - begin
        print(f"baseline: {args.step} takes {length:.2f}s (from {begin:.2f}s)", flush=True)
        bad = 0
        for trial in range(args.trials):
            delay = rng.uniform(0, length)
            cwd, env = night.copy(f"trial{trial}")
            killed = timed_run(cwd, env, (before, delay))
            rerun = skyprep(cwd, env)
            headline = rerun.stdout.splitlines()[0] if rerun.stdout else rerun.stderr[-300:]
            try:
                diff = differences(baseline, duckdb_content(cwd / "skyprep.duckdb"))
            except AssertionError as doubled:  # a doubled measurement or _dlt_loads row
                diff = {"check": str(doubled).splitlines()[0]}
            bad += bool(diff) or rerun.returncode != 0
            print(
                f"trial {trial}: SIGKILL {delay:.2f}s into {args.step} "
                f"(killed={killed['killed']}, exit {killed['code']}); rerun exit "
                f"{rerun.returncode}: {headline}; differences: {diff or 'none'}",
                flush=True,
            )
        print(f"{bad} of {args.trials} trials differ from the uninterrupted run")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
