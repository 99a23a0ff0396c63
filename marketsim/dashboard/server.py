"""Serving the dashboard: check the experiment, then run Solara's server on the app.

`serve` loads the experiment first, so a bad file gets the command line's one-line error
and exit code 2 before any server starts. Solara's telemetry and its version check on PyPI
are switched off (the dashboard talks to nobody but the browser).
"""

from __future__ import annotations

import os
from pathlib import Path

from marketsim.dashboard.controls import DEFAULT_EXPERIMENT
from marketsim.dashboard.controls import EXPERIMENT_VARIABLE
from marketsim.dashboard.controls import load_for_dashboard
from marketsim.errors import MarketsimError

APP = "marketsim.dashboard.app"
"""The module Solara serves (its ``Page`` component)."""


class DashboardUnavailable(MarketsimError):
    """The dashboard's extra (Solara) is not installed."""


def serve(experiment: str | Path | None, host: str, port: int) -> None:
    """Serve the dashboard of ``experiment`` (default the baseline) at ``http://host:port``.

    Runs until interrupted. Port 0 takes a free port (Solara prints the address).

    Raises:
        ExperimentError: the experiment is invalid (before anything is served).
        DashboardUnavailable: Solara is not installed.
    """
    path = Path(experiment) if experiment else DEFAULT_EXPERIMENT
    load_for_dashboard(path, {})
    os.environ[EXPERIMENT_VARIABLE] = str(path.resolve())
    os.environ["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] = "False"
    try:
        from solara.__main__ import cli as solara_cli
    except ImportError:
        raise DashboardUnavailable(
            "dashboard: needs Solara; install it with pip install -e '.[dashboard]'"
        ) from None
    arguments = ["run", APP, "--host", host, "--port", str(port), "--production"]
    arguments += ["--no-open", "--no-check-version"]
    solara_cli.main(args=arguments, prog_name="marketsim dashboard", standalone_mode=False)
