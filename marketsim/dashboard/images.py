"""Charts on the page: PNG data URIs as ``<img>`` elements, titled by their alt text."""

from __future__ import annotations

import solara

from marketsim.dashboard.charts import Figure


@solara.component
def Figures(items: list[Figure]):
    """``items`` as images, two abreast."""
    with solara.GridFixed(columns=2):
        for item in items:
            solara.v.Html(
                tag="img",
                attributes={"src": item.uri, "alt": item.title, "title": item.title},
                style_="width: 100%; height: auto;",
            )
