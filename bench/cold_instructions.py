"""
Instructions per answer of one suite of ``bench/suite_path.py``, counted under valgrind's callgrind
as its ``--instructions`` run counts them (the bench's own child, with ``PYTHONHASHSEED=0``, minus
the same child's ``--setup-only`` run), for one tool alone: what session 15 measured the C
extension with, before and after, without running the whole bench.

    python bench/cold_instructions.py KIND [--tool llmcassette|floor] [--pure] [--warm] [--by-function N]
        [--folder DIR]

KIND is ``json``, ``json-headers`` or ``sse`` (400, 400 and 150 answers, as the bench). llmcassette
runs cold (an empty cache folder) unless ``--warm``; ``--pure`` sets ``LLMCASSETTE_PURE_PYTHON=1``
(the package's Python code alone). ``--by-function N`` also prints the N C functions whose own
instructions differ most between the two runs, per answer (``callgrind_annotate``): where a cold
start's instructions go. Run from the checkout whose package is measured: the child is given it
on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from suite_child import MAKERS, WARMUP_COUNT  # noqa: E402
from suite_path import CACHE_ENV, write_llmcassette  # noqa: E402

COUNTS = {"json": 400, "json-headers": 400, "sse": 150}


def own_costs(path: Path) -> dict[str, int]:
    """Each function's own instructions in a callgrind file."""
    out = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(path)], capture_output=True, text=True, check=True
    ).stdout
    costs: dict[str, int] = {}
    for line in out.splitlines():
        found = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*?)(?: \[.*)?$", line)
        if found and "PROGRAM TOTALS" not in line:
            name = found.group(2).split(":")[-1]
            costs[name] = costs.get(name, 0) + int(found.group(1).replace(",", ""))
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=sorted(COUNTS))
    parser.add_argument("--tool", choices=["llmcassette", "floor"], default="llmcassette")
    parser.add_argument("--pure", action="store_true")
    parser.add_argument("--warm", action="store_true")
    parser.add_argument("--by-function", type=int, default=0, metavar="N")
    parser.add_argument("--folder", type=Path, help="where the cassettes and callgrind files go")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="cold-instructions-"))
    folder.mkdir(parents=True, exist_ok=True)
    count, salt = COUNTS[args.kind], f"cold-{args.kind}"
    cassette, warmup = folder / f"{args.kind}.yaml", folder / f"{args.kind}-warmup.yaml"
    if not cassette.exists():
        write_llmcassette(cassette, [MAKERS[args.kind](i, salt) for i in range(count)])
        write_llmcassette(warmup, [MAKERS[args.kind](i, f"{salt}-warmup") for i in range(WARMUP_COUNT)])
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=folder))
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(BENCH.parent), CACHE_ENV: str(cache)}
    if args.pure:
        env["LLMCASSETTE_PURE_PYTHON"] = "1"
    command = [sys.executable, str(BENCH / "suite_child.py"), args.tool, args.kind, str(count), salt]
    command += [str(cassette), str(warmup), "--play", "all"]
    if args.warm:  # (the cassette entered once before, in another process)
        subprocess.run(command, env=env, check=True, capture_output=True)
    files = []
    for setup_only in (False, True):
        out = folder / f"{args.tool}-{'setup' if setup_only else 'whole'}.callgrind"
        prefix = ["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={out}"]
        done = subprocess.run(
            [*prefix, *command, *(["--setup-only"] if setup_only else [])],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            print(done.stdout, done.stderr[-2000:], file=sys.stderr)
            return 1
        if not setup_only:
            print(done.stdout.strip())
        files.append((setup_only, out))
    totals = {}
    for setup_only, out in files:
        totals[setup_only] = next(
            int(line.split()[1])
            for line in out.read_text().splitlines()
            if line.startswith(("summary:", "totals:"))
        )
    print(
        f"{args.kind} {args.tool}{' pure' if args.pure else ''}{' warm' if args.warm else ''}: "
        f"{(totals[False] - totals[True]) / count:,.0f} instructions per answer"
    )
    if args.by_function:
        whole, setup = (own_costs(out) for setup_only, out in sorted(files, key=lambda item: item[0]))
        differ = sorted(((whole.get(k, 0) - setup.get(k, 0)) / count, k) for k in set(whole) | set(setup))
        for value, name in differ[::-1][: args.by_function]:
            print(f"{value:12,.0f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
