"""``marketsim study FILE``: run a study from the command line.

The click command `study` is registered on the ``marketsim`` group by `marketsim.cli`.
Every error a user can cause (a bad study file, a directory that cannot be used, a worker
that died) is one line on stderr with exit code 2; Ctrl-C keeps the finished tasks, says how
to resume, and exits 130.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from marketsim.diagnostics import check_experiment
from marketsim.diagnostics import strict_warnings
from marketsim.errors import ExperimentError
from marketsim.errors import MarketsimError
from marketsim.study.executors import EXECUTORS
from marketsim.study.running import execute_study
from marketsim.study.running import plan_study
from marketsim.study.writing import TABLE_DIRS

try:
    from marketsim.errors import one_line
except ImportError:  # pragma: no cover - older marketsim.errors

    def one_line(text: str) -> str:
        return text.replace("\n", "\\n")


USER_ERROR = 2
INTERRUPTED = 130


@click.command("study")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Study directory (default: results/<study name>).",
)
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default="local",
    show_default=True,
    help="local: a process pool on this machine; dask: Dask distributed.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes (default: every core; a Dask scheduler's cluster has its own).",
)
@click.option(
    "--scheduler",
    metavar="ADDR",
    help="Dask scheduler address, e.g. tcp://10.0.0.1:8786 (default: a LocalCluster).",
)
@click.option("--resume", is_flag=True, help="Run only the tasks missing from DIR.")
@click.option("--overwrite", is_flag=True, help="Replace a study already in DIR.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@click.option(
    "--strict",
    is_flag=True,
    help="Treat warnings found while loading the study as errors (exit 2, nothing "
    "written): an installed plugin that fails to load, a good nobody buys.",
)
def study(file, out, executor, workers, scheduler, resume, overwrite, quiet, strict):
    """Run the study FILE: every scenario x design point x replication, one task each."""
    plan = None
    try:
        with strict_warnings(strict):
            if scheduler is not None and executor != "dask":
                raise ExperimentError("--scheduler needs --executor dask")
            plan = plan_study(file, out, resume, overwrite)
            for scenario in plan.study.scenarios:  # a good nobody buys: warn (--strict: stop)
                check_experiment(scenario.experiment)
            show_bar = not quiet and sys.stderr.isatty()
            with click.progressbar(
                length=len(plan.remaining),
                label=plan.study.name,
                file=sys.stderr,
                hidden=not show_bar,
                show_eta=True,
                show_pos=True,
            ) as bar:
                execute_study(plan, executor, workers, scheduler, progress=bar.update)
    except MarketsimError as error:
        line = error.line() if isinstance(error, ExperimentError) else str(error)
        click.echo(one_line(f"error: {line}"), err=True)
        sys.exit(USER_ERROR)
    except KeyboardInterrupt:
        if plan is None:
            click.echo("interrupted: nothing was written", err=True)
        else:
            click.echo(
                f"interrupted: {plan.done} of {plan.total} tasks are finished and kept in "
                f"{plan.directory}; run again with --resume to finish",
                err=True,
            )
        sys.exit(INTERRUPTED)
    if not quiet:
        click.echo(_summary(plan))


def _summary(plan) -> str:
    """What was run and written."""
    study = plan.study
    directory = plan.directory
    counts = (
        f"{len(study.scenarios)} scenario(s) x {len(study.design.points)} point(s) x "
        f"{study.replications} replication(s)"
    )
    ran = len(plan.remaining)
    resumed = f", {plan.total - ran} already finished" if plan.total != ran else ""
    written = [f"{name}/" for name in TABLE_DIRS if (directory / name).is_dir()]
    written += sorted(
        path.name for path in directory.iterdir() if path.is_file() and path.suffix == ".parquet"
    )
    return (
        f"wrote {directory}/: {plan.total} tasks ({counts}; {ran} run now{resumed}): "
        + ", ".join([*written, "manifest.json"])
    )
