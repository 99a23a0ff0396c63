"""The command line: ``marketsim run | validate | graph | plugins | new-plugin | dashboard``.

Nothing economic lives here. Every error a user can cause is shown as one line on stderr
(newlines and control characters in it escaped as ``\\n`` and so on) with exit code 2 and no
traceback; nothing is written unless the whole run succeeded. ``run`` checks, locks and
prepares its results directory before the run starts (see `marketsim.results`), so a target
that cannot take the results is refused at once. Ctrl-C exits 130 and SIGTERM (``timeout``, a
batch scheduler) 143, both with ``interrupted: nothing was written`` and nothing left behind;
if the signal arrives while the results are being put in place it takes effect once they are,
and the line says where they were written.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import click
import networkx as nx

from marketsim.config import dump_toml
from marketsim.diagnostics import check_experiment
from marketsim.diagnostics import check_run
from marketsim.diagnostics import strict_warnings
from marketsim.diagnostics import warning_lines
from marketsim.errors import ExperimentError
from marketsim.errors import MarketsimError
from marketsim.experiment import load_experiment
from marketsim.graph_io import write_edge_list
from marketsim.plugins import plugin_infos
from marketsim.plugins import plugin_manager
from marketsim.results import one_line
from marketsim.results import results_target
from marketsim.runner import run as run_experiment
from marketsim.scaffold import KINDS as PLUGIN_KINDS
from marketsim.scaffold import write_plugin

USER_ERROR = 2
INTERRUPTED = 130
TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (exit code 143 instead of 130)."""


def _raise_terminated(signum, frame):
    raise Terminated()


class _Written:
    """Where a run's results were put, once they are (for the interrupt message)."""

    target = None


@contextmanager
def user_errors():
    """Show a user error as one line and exit 2; an interrupt exits 130 (SIGTERM: 143)."""
    written = _Written()
    try:
        yield written
    except MarketsimError as error:
        line = error.line() if isinstance(error, ExperimentError) else str(error)
        _error_line(f"error: {line}")
        sys.exit(USER_ERROR)
    except KeyboardInterrupt as interrupt:
        target = written.target
        if target is not None and target.committed:
            _error_line(f"interrupted: results were written to {target.path}")
        else:
            _error_line("interrupted: nothing was written")
        sys.exit(TERMINATED if isinstance(interrupt, Terminated) else INTERRUPTED)


def _error_line(text: str) -> None:
    """Print ``text`` as exactly one line on stderr."""
    click.echo(one_line(text), err=True)


def _overrides(sets: tuple[str, ...], seed: int | None, steps: int | None) -> list[str]:
    overrides = list(sets)
    if seed is not None:
        overrides.append(f"experiment.seed={seed}")
    if steps is not None:
        overrides.append(f"experiment.steps={steps}")
    return overrides


SET_OPTION = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a key, e.g. --set agents.utility.capacity_mw=5000 (TOML value; repeatable).",
)

STRICT_OPTION = click.option(
    "--strict",
    is_flag=True,
    help="Treat warnings as errors (exit 2, nothing written): a good nobody buys, a market "
    "that never trades, an installed plugin that fails to load.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="marketsim")
def cli():
    """Agent-based market simulation of the AI supply chain."""
    click.get_current_context().with_resource(warning_lines())  # "warning: ..." on one line


def main(args: list[str] | None = None) -> None:
    """Entry point: click's own usage errors are shown as one line too, with exit code 2.

    SIGTERM raises `Terminated` (a KeyboardInterrupt) for the duration, so it is handled
    exactly like Ctrl-C.
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        code = cli.main(args=args, prog_name="marketsim", standalone_mode=False)
    except click.exceptions.Abort as abort:
        _error_line("interrupted: nothing was written")
        terminated = isinstance(abort.__cause__ or abort.__context__, Terminated)
        sys.exit(TERMINATED if terminated else INTERRUPTED)
    except click.ClickException as error:
        context = f"{error.ctx.command_path}: " if getattr(error, "ctx", None) else ""
        _error_line(f"error: {context}{error.format_message()}")
        sys.exit(error.exit_code)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    sys.exit(code or 0)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Results directory (default: [output] dir or results/<name>).",
)
@click.option("--seed", type=click.IntRange(min=0), help="Override experiment.seed.")
@click.option("--steps", type=click.IntRange(min=1), help="Override experiment.steps.")
@SET_OPTION
@click.option("--overwrite", is_flag=True, help="Replace existing results in the directory.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes to run replications in (same results, faster with several).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@STRICT_OPTION
def run(file, out, seed, steps, sets, overwrite, workers, quiet, strict):
    """Run the experiment FILE and write its results."""
    with user_errors() as written, strict_warnings(strict):
        experiment = load_experiment(file, _overrides(sets, seed, steps))
        check_experiment(experiment)
        config = experiment.config
        out = out or Path(config["output"]["dir"] or Path("results") / experiment.name)
        with results_target(out, overwrite, experiment_name=experiment.name) as target:
            written.target = target
            total = config["experiment"]["steps"] * config["experiment"]["replications"]
            show_bar = not quiet and sys.stderr.isatty()
            with click.progressbar(
                length=total, label=f"{experiment.name}", file=sys.stderr, hidden=not show_bar
            ) as bar:
                results = run_experiment(
                    experiment, progress=bar.update, workers=workers, target=target
                )
            check_run(experiment, results)
            target.write(results)
        if not quiet:
            click.echo(_summary(results, target.path))


def _summary(results, written: Path) -> str:
    """What ``run`` prints: where the results went, then each sector over the whole horizon."""
    from marketsim.analysis import run_summary

    files = ", ".join(sorted(f"{name}.parquet" for name in results.tables))
    return f"wrote {one_line(str(written))}/: {files}, manifest.json\n{run_summary(results)}"


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@SET_OPTION
def validate(file, sets):
    """Check FILE and print the resolved experiment with every default filled in."""
    with user_errors():
        experiment = load_experiment(file, list(sets))
        check_experiment(experiment)  # a good nobody buys: a warning on stderr
        click.echo(f"# {file}: valid (sha256 {experiment.sha256})")
        click.echo(dump_toml(experiment.config), nl=False)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write: GraphML (graph.graphml, for Gephi or Cytoscape) or a CSV edge list "
    "(edges.csv: seller, buyer, good; written from the arrays, for large economies).",
)
@SET_OPTION
@click.option("--overwrite", is_flag=True, help="Replace the file if it exists.")
def graph(file, out, sets, overwrite):
    """Write the supply graph of FILE as GraphML or as a CSV edge list (by --out's suffix).

    Either file loads back with ``[graph] file`` and gives the same economy.
    """
    with user_errors():
        experiment = load_experiment(file, list(sets))
        if out.suffix.lower() not in (".graphml", ".csv"):
            raise ExperimentError(f"--out: expected a .graphml or .csv file, got {out.name!r}")
        if out.exists() and not overwrite:
            raise ExperimentError(f"{out} exists; pass --overwrite to replace it")
        supply = experiment.supply_edges()
        out.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        os.close(handle)
        try:
            if out.suffix.lower() == ".csv":
                write_edge_list(supply, temporary)
            else:
                nx.write_graphml(supply.to_networkx(), temporary)
            os.replace(temporary, out)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        nodes = int(supply.counts.sum())
        click.echo(f"wrote {out}: {nodes} nodes, {supply.n_edges} edges")


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=str))
def plugins(file):
    """List plugins (with FILE: also the ones it names) with version, source and hooks."""
    with user_errors():
        manager = load_experiment(file).manager if file else plugin_manager()
        for info in plugin_infos(manager):
            click.echo(f"{info.name}  {info.version}  ({info.source})")
            for hook in info.hooks:
                click.echo(f"    {hook}")


@cli.command("new-plugin")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(PLUGIN_KINDS),
    default=PLUGIN_KINDS[0],
    show_default=True,
    help="What the example plugin does: a sector, a policy, a clearing mechanism or a metric.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=Path("."),
    help="Where to write the package NAME/ (default: the working directory).",
)
def new_plugin(name, kind, directory):
    """Write a pip-installable plugin package NAME/ (module, test, example experiment)."""
    with user_errors():
        target = write_plugin(name, kind, directory)
        click.echo(
            f"wrote {one_line(str(target))}/: pyproject.toml, {name}.py, tests/, experiments/"
        )
        click.echo(f"next: cd {one_line(str(target))} && pip install -e . && pytest")


@cli.command()
@click.argument("experiment", required=False, type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to serve on (0: any free port).",
)
@click.option("--host", default="localhost", show_default=True, help="Address to listen on.")
def dashboard(experiment, port, host):
    """Serve the live dashboard of EXPERIMENT (default: the baseline) in the browser."""
    from marketsim.dashboard.server import serve  # Solara is imported only here

    with user_errors():
        serve(experiment, host, port)


def _register_commands() -> None:
    """Commands that live beside the concept they serve: studies, reports, comparisons."""
    from marketsim.report.command import compare
    from marketsim.report.command import report
    from marketsim.study.command import study

    for command in (study, report, compare):
        cli.add_command(command)


_register_commands()
