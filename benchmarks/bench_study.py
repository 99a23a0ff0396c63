"""Benchmark of a study: replications of the baseline, run and written to disk.

Run ``python benchmarks/bench_study.py`` (defaults: 1,000 replications of the baseline, 120
steps each, every core, the local process pool and then Dask on a LocalCluster). For each
executor it prints the wall time of the whole study (planning, workers, every task's Parquet
part files, the manifest; not the analysis) and the time per task split into

- start-up: seconds from a worker process's start to its first task (imports), once per
  worker, and the first task's extra load and build time (loading the compiled kernels);
- load: the task's experiment (the scenario's, unpickled once per worker, with the task's
  values applied and validated again) and its sha256 check;
- build: building the model (supply graph, markets, sectors);
- steps: stepping it;
- write: collecting its tables and writing the three part files;
- cpu: the CPU time a task used, which does not grow when other programs share the cores.

"idle s" estimates the wall time on an otherwise idle machine: the CPU seconds of all tasks
divided by the number of workers, plus one worker start-up. On a shared machine the wall
time is longer by the share of the cores other programs took.

Per-task figures are means over every task but each worker's first. ``--replications``,
``--steps``, ``--workers`` and ``--executors local`` make shorter runs; ``--keep DIR`` keeps
the study directories.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

# Run as a script from a checkout: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from marketsim.study import load_study  # noqa: E402
from marketsim.study import run_study  # noqa: E402
from marketsim.study.executors import default_workers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

STUDY = """
[study]
name = "bench_{executor}"
seed = 1
replications = {replications}

[study.scenarios]
baseline = "{baseline}"

[study.set]
"experiment.steps" = {steps}
"""


def bench_study(
    executor: str, replications: int, steps: int, workers: int, folder: Path
) -> dict[str, float]:
    """Run the baseline study once with ``executor``; return wall time and per-task splits (s)."""
    path = folder / f"bench_{executor}.toml"
    path.write_text(
        STUDY.format(
            executor=executor,
            replications=replications,
            steps=steps,
            baseline=(ROOT / "experiments" / "baseline.toml").as_posix(),
        ),
        encoding="utf-8",
    )
    out = folder / f"bench_{executor}"
    started = time.perf_counter()
    results = run_study(
        load_study(path), executor=executor, workers=workers, out=out, analyse=False
    )
    wall = time.perf_counter() - started
    timings = results.timings
    first = timings.groupby("pid").head(1)
    rest = timings.drop(index=first.index)
    if rest.empty:
        rest = timings
    written = sum(f.stat().st_size for f in out.rglob("*.parquet"))
    mean = rest[["load_s", "build_s", "steps_s", "write_s", "total_s", "cpu_s"]].mean()
    return {
        "wall_s": wall,
        "tasks": len(timings),
        "workers": timings["pid"].nunique(),
        "startup_s": float(first["startup_s"].dropna().mean()) if len(first) else float("nan"),
        "first_task_extra_s": float(
            (first["load_s"] + first["build_s"]).mean() - (mean["load_s"] + mean["build_s"])
        ),
        **{name: float(value) for name, value in mean.items()},
        "megabytes": written / 1e6,
        "idle_s": float(timings["cpu_s"].sum()) / max(timings["pid"].nunique(), 1)
        + float(first["startup_s"].dropna().mean() if len(first) else 0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--executors", default="local,dask")
    parser.add_argument("--keep", type=Path, help="keep the study directories here")
    args = parser.parse_args()
    print(
        f"{platform.machine()} {platform.system()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores; {args.replications} replications x {args.steps} steps, "
        f"{args.workers} workers"
    )
    header = (
        f"{'executor':<8}{'wall s':>9}{'tasks/s':>9}{'start-up s':>12}{'1st task +s':>12}"
        f"{'load ms':>9}{'build ms':>9}{'steps ms':>9}{'write ms':>9}{'task ms':>9}"
        f"{'cpu ms':>8}{'idle s':>8}{'MB':>7}"
    )
    print(header)
    with tempfile.TemporaryDirectory(dir=args.keep) as temporary:
        for executor in args.executors.split(","):
            row = bench_study(
                executor, args.replications, args.steps, args.workers, Path(temporary)
            )
            print(
                f"{executor:<8}{row['wall_s']:>9.1f}{row['tasks'] / row['wall_s']:>9.2f}"
                f"{row['startup_s']:>12.2f}{row['first_task_extra_s']:>12.2f}"
                f"{row['load_s'] * 1e3:>9.1f}{row['build_s'] * 1e3:>9.1f}"
                f"{row['steps_s'] * 1e3:>9.1f}{row['write_s'] * 1e3:>9.1f}"
                f"{row['total_s'] * 1e3:>9.1f}{row['cpu_s'] * 1e3:>8.1f}"
                f"{row['idle_s']:>8.0f}{row['megabytes']:>7.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
