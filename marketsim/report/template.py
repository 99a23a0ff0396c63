"""The report's HTML template (Jinja2, autoescaped), kept as a Python string so that it is
installed with the package without package-data configuration.

The page is self-contained: inline CSS, charts as PNG data URIs, no scripts, no links to
anything outside the file.
"""

REPORT_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1d2329; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.3rem; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2rem;
     margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin-bottom: 0.3rem; }
p.note, li.note { color: #57606a; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.86rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.5rem; vertical-align: top; }
th { background: #f3f5f7; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.ci { color: #57606a; }
tr.significant td { background: #fff4d6; }
span.mark { font-weight: bold; color: #9a6700; }
code, td.mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace;
                font-size: 0.8rem; word-break: break-all; }
figure { margin: 0.8rem 0 1.4rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: 0.85rem; }
.grid { display: flex; flex-wrap: wrap; gap: 0 1.5rem; }
.grid figure { flex: 1 1 30rem; }
</style>
</head>
<body>
{% macro figure(chart) %}
<figure><img src="{{ chart.uri }}" alt="{{ chart.title }}">
<figcaption>{{ chart.title }}</figcaption></figure>
{% endmacro %}
<h1>{{ title }}</h1>
<p class="note">{{ subtitle }}</p>

<h2 id="overview">Overview</h2>
<table>
<tr><th>label</th><th>kind</th><th>directory</th><th>scenarios</th><th>runs</th></tr>
{% for item in overview %}
<tr><td>{{ item.label }}</td><td>{{ item.kind }}</td><td class="mono">{{ item.directory }}</td>
<td>{{ item.scenarios | join(", ") }}</td><td class="num">{{ item.runs }}</td></tr>
{% endfor %}
</table>
<ul>
{% for note in notes %}<li class="note">{{ note }}</li>{% endfor %}
</ul>

<h2 id="headline">Headline outcomes</h2>
<p class="note">Mean over runs with its 95% confidence interval; horizon ratios divide sums
over the whole horizon.</p>
<table>
<tr><th>outcome</th><th>unit</th>
{% for scenario in headline.scenarios %}<th colspan="2">{{ scenario }}</th>{% endfor %}</tr>
{% for row in headline.rows %}
<tr><td><code>{{ row.outcome }}</code></td><td>{{ row.unit }}</td>
{% for cell in row.cells %}
<td class="num">{{ cell.mean }}</td><td class="num ci">{{ cell.ci }}</td>
{% endfor %}
</tr>
{% endfor %}
</table>

<h2 id="time">Over time</h2>
<p class="note">Lines are means over runs; bands are 95% confidence intervals of the mean.</p>
<div class="grid">
{% for chart in fans %}
{{ figure(chart) }}
{% endfor %}
</div>

<h2 id="value-capture">Value capture by sector</h2>
<p class="note">Each sector's share of the chain's gross profit per step (mean over runs).</p>
<div class="grid">
{% for chart in shares %}
{{ figure(chart) }}
{% endfor %}
</div>

<h2 id="horizon">Gross margin and value capture over the horizon</h2>
<p class="note">Gross margin = sum of gross profit / sum of revenue; value capture = sum of
the sector's gross profit / sum of the chain's; mean over runs [95% CI].</p>
<table>
<tr><th rowspan="2">sector</th>
{% for scenario in horizon.scenarios %}<th colspan="2">{{ scenario }}</th>{% endfor %}</tr>
<tr>{% for scenario in horizon.scenarios %}
<th>gross margin</th><th>value capture</th>
{% endfor %}</tr>
{% for row in horizon.rows %}
<tr><td>{{ row.sector }}</td>
{% for cell in row.cells %}
<td class="num">{{ cell.margin }} <span class="ci">{{ cell.margin_ci }}</span></td>
<td class="num">{{ cell.share }} <span class="ci">{{ cell.share_ci }}</span></td>
{% endfor %}
</tr>
{% endfor %}
</table>

{% if differences %}
<h2 id="differences">Paired differences against {{ differences.reference }}</h2>
<p class="note">{{ differences.note }} Rows marked <span class="mark">*</span> have a 95%
confidence interval that excludes zero.</p>
<table>
<tr><th>scenario</th><th>outcome</th><th>unit</th><th>difference</th><th>95% CI</th>
<th>pairs</th><th></th></tr>
{% for row in differences.rows %}
<tr{% if row.significant %} class="significant"{% endif %}><td>{{ row.scenario }}</td>
<td><code>{{ row.outcome }}</code></td><td>{{ row.unit }}</td>
<td class="num">{{ row.mean }}</td><td class="num ci">{{ row.ci }}</td>
<td class="num">{{ row.n }}</td>
<td>{% if row.significant %}<span class="mark">*</span>{% endif %}</td></tr>
{% endfor %}
</table>
{% endif %}

{% if sensitivity %}
<h2 id="sensitivity">Sensitivity</h2>
<p class="note">Sobol: first-order (S1) and total (ST) indices; Morris: mu_star (mean
absolute elementary effect) and sigma; bars show bootstrap 95% intervals.</p>
<div class="grid">
{% for chart in sensitivity %}
{{ figure(chart) }}
{% endfor %}
</div>
{% endif %}

<h2 id="provenance">Provenance</h2>
{% for item in provenance %}
<h3>{{ item.label }}</h3>
{% for section in item.sections %}
<table>
<tr><th colspan="2">{{ section.title }}</th></tr>
{% for key, value in section.rows %}
<tr><td>{{ key }}</td><td class="mono">{{ value }}</td></tr>
{% endfor %}
</table>
{% endfor %}
{% endfor %}
</body>
</html>
"""
