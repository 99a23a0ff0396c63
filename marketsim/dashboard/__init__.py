"""The live dashboard: ``marketsim dashboard [EXPERIMENT]`` serves a page built on Mesa's
SolaraViz (docs/dashboard.md).

Modules: `controls` (levers from the experiment schema, checked as ``--set`` is), `session`
(the model SolaraViz steps), `charts` (figures from results-shaped tables), `graph_view` (the
supply graph with this step's flows), `results_view` (run and study directories with 95%
bands), `app` (the Solara page) and `server` (starting it). Only `app`, `images` and
`results_view` import Solara, which comes with ``pip install -e '.[dashboard]'``.
"""
