"""Benchmark by count: machine instructions per decision under callgrind (issue 13).

    .venv/bin/python benchmarks/bench_instructions.py [--baseline DIR] [--pure]

A wall-clock time on a shared 2-core machine moves by tens of percent from run to
run; an instruction count does not. Each measurement runs ``valgrind
--tool=callgrind`` twice on the steady 10k-account pool of ``bench_router.py``
(``steady_pool``, least_loaded unless ``--strategy``), once with ``--small`` and
once with ``--large`` decisions (submit + complete, explain=False); the
difference divided by the difference in decisions removes the set-up. Hash
randomisation is off (``PYTHONHASHSEED=0``), so dict probing is the same on
every run. ``--baseline DIR``: another checkout (e.g. ``git worktree add``; its
compiled core built with its own ``make compile``) measured the same way, and
the ratio. ``--pure``: both sides on their ``.py`` sources (``BYOA_PURE=1``).
Needs valgrind; takes about a minute per side.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DRIVER = """
import sys
sys.path.insert(0, {bench!r})
from bench_router import STEP, decide, steady_pool
from router import compiled
from router.strategies import Strategy
pool, reqs, in_flight, now = steady_pool(10_000, {large}, strategy=Strategy({strategy!r}),
                                         windows=0.0, seed=1)
print(compiled.status(), file=sys.stderr)
for k in range(int(sys.argv[1])):
    now += STEP
    decide(pool, reqs[k % len(reqs)], f"t{{k}}", in_flight, now)
"""


def instructions(tree: str, decisions: int, driver: str, pure: bool) -> tuple[int, str]:
    """Instructions of one run of ``driver`` on ``tree``'s router, and its core."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        env = {**os.environ, "PYTHONPATH": tree, "PYTHONHASHSEED": "0"}
        if pure:
            env["BYOA_PURE"] = "1"
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             "-c", driver, str(decisions)],
            env=env, cwd=tree, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            sys.exit(f"callgrind run failed in {tree}:\n{run.stderr[-2000:]}")
        with open(out, encoding="utf-8") as f:
            total = next(int(line.split()[1]) for line in f
                         if line.startswith(("summary:", "totals:")))
    core = next((line for line in run.stderr.splitlines()
                 if re.match(r"(compiled|pure)", line)), "?")
    return total, core


def per_decision(tree: str, small: int, large: int, strategy: str,
                 pure: bool) -> tuple[float, str]:
    driver = DRIVER.format(bench=os.path.join(HERE, "benchmarks"), large=large,
                           strategy=strategy)
    a, core = instructions(tree, small, driver, pure)
    b, _core = instructions(tree, large, driver, pure)
    return (b - a) / (large - small), core


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", metavar="DIR", help="another checkout of this repository")
    ap.add_argument("--pure", action="store_true", help="both sides with BYOA_PURE=1")
    ap.add_argument("--strategy", default="least_loaded")
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--large", type=int, default=2_200)
    args = ap.parse_args(argv)
    mine, core = per_decision(HERE, args.small, args.large, args.strategy, args.pure)
    print(f"this tree: {mine:,.0f} instructions per decision ({core}), 10k accounts, "
          f"{args.strategy}, decisions {args.small} -> {args.large}")
    if args.baseline:
        theirs, core_b = per_decision(os.path.abspath(args.baseline), args.small, args.large,
                                      args.strategy, args.pure)
        print(f"baseline {args.baseline}: {theirs:,.0f} instructions per decision ({core_b}); "
              f"this / baseline {mine / theirs:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
