"""The click commands ``marketsim report`` and ``marketsim compare``.

They are registered on the ``marketsim`` group by `marketsim.cli` (``cli.add_command``).
Every error a user can cause (not a results directory, an unreadable table, a missing
scenario, an existing report without ``--overwrite``) is one line ``error: ...`` on
stderr with exit code 2; nothing is half-written.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import click

from marketsim.errors import MarketsimError

USER_ERROR = 2


@contextmanager
def _user_errors():
    """Show a user error as one line and exit 2; an interrupt exits 130."""
    try:
        yield
    except MarketsimError as error:
        line = error.line() if hasattr(error, "line") else str(error)
        click.echo(f"error: {line}", err=True)
        sys.exit(USER_ERROR)
    except KeyboardInterrupt:
        click.echo("interrupted: nothing was written", err=True)
        sys.exit(130)


@click.command()
@click.argument(
    "directories", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="DIR..."
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write (e.g. report.html).",
)
@click.option("--overwrite", is_flag=True, help="Replace the file if it exists.")
def report(directories, out, overwrite):
    """Write a self-contained HTML report of run or study directories (several: compared)."""
    from marketsim.report.build import build_report

    with _user_errors():
        written = build_report(directories, out, overwrite=overwrite)
        click.echo(f"wrote {written}")


@click.command()
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option(
    "--study",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Compare scenarios A and B of this study (otherwise A and B are run directories).",
)
def compare(a, b, study):
    """Headline outcomes of A and B with the paired difference B - A and its 95% CI."""
    from marketsim.report.compare import compare_table

    with _user_errors():
        click.echo(compare_table(a, b, study=study))
