"""
What llmcassette adds to the start of a process, against the same process without it.

    .venv/bin/python bench/startup.py            # prints a report and writes bench/STARTUP_RESULTS.md
    .venv/bin/python bench/startup.py --quick    # fewer rounds, no file written

Each pair runs in the same round, one right after the other, and every figure is the median over
the rounds, so a machine that slows down does so for both sides of a pair:

- ``python -c 'import llmcassette'`` against ``python -c pass``;
- ``pytest --collect-only`` of a tiny suite (two plain tests) with the plugin against the same run
  with ``-p no:llmcassette`` (every other installed plugin loads in both, but Hypothesis's);
- ``llmcassette --help`` against ``python -c pass`` (what the command itself costs);
- entering a first cassette against ``import llmcassette`` alone, and ``import aiohttp, urllib3``
  (what entering imported before the doors opened only on imported libraries) against
  ``python -c pass``.

Each run is timed twice: wall time, and the CPU time (user + system) the process used. On an idle
machine the two agree; on a shared one, wall time also counts the waits for a CPU, which are
many times what is measured here and differ from run to run. The targets are checked on CPU time,
and both are reported: at most 30 ms added to a pytest run that uses none of llmcassette,
``import llmcassette`` under 100 ms, ``llmcassette --help`` under 250 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY_SUITE = """
def test_one():
    assert 1 + 1 == 2


def test_two():
    assert "a" * 2 == "aa"
"""

# (what, target in ms, what the target applies to)
# Entering a cassette, in a process that has imported no HTTP library but what llmcassette needs.
ENTER = "import llmcassette\nwith llmcassette.use_cassette('never-written.yaml'):\n    pass"

TARGETS = {
    "pytest": (30.0, "added to `pytest --collect-only` by the plugin"),
    "import": (100.0, "`import llmcassette`, over `python -c pass`"),
    "help": (250.0, "`llmcassette --help`, the whole process"),
}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time_ms(command: list[str], cwd: Path) -> tuple[float, float]:
    """The wall time and the CPU time of one run of ``command``, in ms."""
    cpu, started = _cpu_s(), time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000, (_cpu_s() - cpu) * 1000


def measure(rounds: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU times, in ms, of every command, run in turn in each round."""
    python = sys.executable
    script = Path(python).with_name("llmcassette")
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        (cwd / "test_tiny.py").write_text(TINY_SUITE)
        # Hypothesis's plugin imports all of Hypothesis (a second or more): it is the same on both
        # sides, and only its noise would reach the difference, so both runs leave it out.
        collect = [
            *(python, "-m", "pytest", "--collect-only", "-q"),
            *("-p", "no:cacheprovider", "-p", "no:hypothesispytest"),
        ]
        commands = {
            "python": [python, "-c", "pass"],
            "import": [python, "-c", "import llmcassette"],
            "pytest_without": [*collect, "-p", "no:llmcassette"],
            "pytest_with": collect,
            "help": [str(script), "--help"] if script.exists() else [python, "-m", "llmcassette", "--help"],
            "enter": [python, "-c", ENTER],
            "libraries": [python, "-c", "import aiohttp, urllib3"],
        }
        for command in commands.values():  # warm the file cache and the bytecode
            _time_ms(command, cwd)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        order = list(commands)
        for _ in range(rounds):
            for name in order:
                samples[name].append(_time_ms(commands[name], cwd))
            order.reverse()  # neither side of a pair always runs first
    return {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in samples.items()
    }


def report(medians: dict[str, tuple[float, float]], rounds: int) -> tuple[str, bool]:
    """The Markdown report, and whether every target was met."""
    rows = [
        ("import", "python", "`python -c 'import llmcassette'` vs `python -c pass`"),
        (
            "pytest_with",
            "pytest_without",
            "`pytest --collect-only`, a two-test suite, vs `-p no:llmcassette`",
        ),
        ("help", "python", "`llmcassette --help` vs `python -c pass`"),
        ("enter", "import", "entering a first cassette vs `import llmcassette`"),
        ("libraries", "python", "`import aiohttp, urllib3` (no longer done by entering) vs `python -c pass`"),
    ]
    lines = [
        "# Startup benchmark",
        "",
        f"`bench/startup.py`, medians of {rounds} rounds, each pair measured side by side in every round. "
        f"Python {platform.python_version()} on {platform.system()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the end.",
        "",
        "| process | CPU with | CPU without | CPU added | wall with | wall without | wall added |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, baseline, label in rows:
        (wall, cpu), (base_wall, base_cpu) = medians[name], medians[baseline]
        lines.append(
            f"| {label} | {cpu:.0f} ms | {base_cpu:.0f} ms | {cpu - base_cpu:.0f} ms | {wall:.0f} ms | "
            f"{base_wall:.0f} ms | {wall - base_wall:.0f} ms |"
        )
    measured = {
        "pytest": medians["pytest_with"][1] - medians["pytest_without"][1],
        "import": medians["import"][1] - medians["python"][1],
        "help": medians["help"][1],
    }
    lines += ["", "| target (CPU time) | limit | measured | met |", "|---|---|---|---|"]
    met = True
    for key, (limit_ms, what) in TARGETS.items():
        ok = measured[key] <= limit_ms
        met = met and ok
        lines.append(f"| {what} | {limit_ms:.0f} ms | {measured[key]:.0f} ms | {'yes' if ok else 'NO'} |")
    return "\n".join(lines) + "\n", met


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds; do not write STARTUP_RESULTS.md")
    parser.add_argument("--rounds", type=int, default=None, help="rounds to take the medians over")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 21)
    text, met = report(measure(rounds), rounds)
    print(text)
    if not args.quick:
        (Path(__file__).parent / "STARTUP_RESULTS.md").write_text(text)
    if not met:
        sys.exit("bench/startup.py: a startup target was missed (see the table above).")


if __name__ == "__main__":
    main()
