"""The report as one HTML page: style, charts and the group filter's few lines of script inline.

The page's Content-Security-Policy allows no source but the page itself (`default-src 'none'`)
and only the one inline script whose hash it names: opened from disk or an e-mail attachment it
makes no request to any host, and text from the account can never become a script.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Sequence

from skyprep_source.report.sections import Figure, Section, Table
from skyprep_source.report.svg import escape

STYLE = """
:root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; }
body { margin: 0 auto; max-width: 1280px; padding: 16px 24px 48px; background: #fff; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 0 40px; }
header h1 { font-size: 1.5rem; margin: 0 0 4px; }
header p { margin: 0; color: #555; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr));
  gap: 12px; margin: 20px 0; padding: 0; list-style: none; }
.figure { border: 1px solid #ddd; border-radius: 6px; padding: 10px 12px; }
.figure .value { display: block; font-size: 1.6rem; font-weight: 600; }
.figure .label { display: block; font-size: .85rem; color: #444; }
.figure .change { display: block; font-size: .75rem; color: #666; margin-top: 4px; }
section { border-top: 1px solid #e5e5e5; padding: 12px 0 8px; }
section h2 { font-size: 1.1rem; margin: 4px 0; }
.reading { margin: 0 0 8px; color: #333; }
.note { color: #8a5a00; background: #fff8e6; padding: 8px 10px; border-radius: 4px; }
.bars { display: grid; gap: 2px; }
.bar-row { display: grid; grid-template-columns: minmax(110px, 32%) 1fr minmax(90px, auto);
  align-items: center; gap: 8px; font-size: .85rem; }
.bar-label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; text-align: right; }
.bar-value { color: #444; white-space: nowrap; }
svg.chart { width: 100%; height: auto; max-height: 300px; }
svg text.tick { font-size: 11px; fill: #555; }
.legend { list-style: none; padding: 0; margin: 6px 0; display: flex; flex-wrap: wrap;
  gap: 14px; font-size: .8rem; }
.legend li { display: flex; align-items: center; gap: 4px; }
details { margin: 6px 0; font-size: .85rem; }
table { border-collapse: collapse; margin-top: 6px; }
th, td { border-bottom: 1px solid #eee; padding: 2px 10px 2px 0; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.filter { margin: 8px 0 0; font-size: .9rem; }
[hidden] { display: none !important; }
footer { margin-top: 24px; font-size: .75rem; color: #777; }
"""

# The group filter: hides the rows of every other group in the charts and tables that have a
# group dimension. Without script the page shows every group.
SCRIPT = """
(function () {
  var select = document.getElementById("group-filter");
  if (!select) { return; }
  select.addEventListener("change", function () {
    var chosen = select.value;
    document.querySelectorAll("[data-group]").forEach(function (row) {
      row.hidden = chosen !== "" && row.getAttribute("data-group") !== chosen;
    });
  });
})();
"""


def script_hash(script: str) -> str:
    """The CSP source expression that allows exactly this inline script."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def render(
    *,
    account: str,
    source: str,
    as_of: dt.datetime | None,
    loads: int,
    figures: Sequence[Figure],
    sections: Sequence[Section],
    generated_at: dt.datetime,
) -> str:
    """The whole page."""
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src {script_hash(SCRIPT)}"
    )
    as_of_text = as_of.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if as_of else None
    subtitle = (
        f"Account <strong>{escape(account)}</strong> · as of {escape(as_of_text)} "
        f"(the last successful load) · {loads} load{'s' if loads != 1 else ''} in the history"
        if as_of_text
        else f"Account <strong>{escape(account)}</strong> · no successful load yet"
    )
    groups: dict[str, str] = {}
    for section in sections:
        groups.update(section.groups)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>SkyPrep compliance report · {escape(account)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f'<header><h1>SkyPrep compliance report</h1><p id="as-of" data-as-of="'
        f'{escape(as_of.isoformat() if as_of else "")}">{subtitle}</p>',
        _filter(groups),
        "</header>",
        _figures(figures),
        "<main>",
        *(_section(section) for section in sections),
        "</main>",
        f"<footer>Written by skyprep-source at {escape(generated_at.strftime('%Y-%m-%d %H:%M UTC'))}"
        f" from {escape(source)}. Definitions of every measure: docs/models.md. The charts' "
        "numbers are in the table under each chart.</footer>",
        f"<script>{SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _filter(groups: dict[str, str]) -> str:
    if not groups:
        return ""
    options = "".join(
        f'<option value="{escape(gid)}">{escape(name)}</option>'
        for gid, name in sorted(groups.items(), key=lambda item: item[1].lower())
    )
    return (
        '<p class="filter"><label for="group-filter">User group: </label>'
        f'<select id="group-filter"><option value="">all groups</option>{options}</select> '
        "(applies to the charts by group)</p>"
    )


def _figures(figures: Sequence[Figure]) -> str:
    items = "".join(
        f'<li class="figure" data-figure="{escape(f.key)}" data-value="'
        f'{_number(f.value)}" data-previous="{_number(f.previous)}">'
        f'<span class="value">{escape(f.text)}</span><span class="label">{escape(f.label)}</span>'
        f'<span class="change">{escape(f.change)}</span></li>'
        for f in figures
    )
    return f'<ul class="figures" aria-label="Headline figures">{items}</ul>'


def _number(value: float | None) -> str:
    """A figure's exact value for the page's data attributes ('' when there is none)."""
    return "" if value is None else repr(float(value))


def _section(section: Section) -> str:
    body = [f"<h2>{escape(section.title)}</h2>"]
    if section.note:
        body.append(f'<p class="note">{escape(section.note)}</p>')
    if section.reading:
        body.append(f'<p class="reading">{escape(section.reading)}</p>')
    if section.chart:
        body.append(
            f'<div class="chart-box" data-chart="{escape(section.key)}">{section.chart}</div>'
        )
        body.append(section.legend)
    if section.table is not None:
        body.append(_table(section.title, section.table))
    return f'<section id="{escape(section.key)}" data-section="{escape(section.key)}">{"".join(body)}</section>'


def _table(caption: str, table: Table) -> str:
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in table.headers)
    rows = []
    for index, row in enumerate(table.rows):
        group = table.group_ids[index] if table.group_ids else None
        attrs = f' data-group="{escape(group)}"' if group is not None else ""
        cells = "".join(
            f'<th scope="row">{escape(cell)}</th>' if i == 0 else f"<td>{escape(cell)}</td>"
            for i, cell in enumerate(row)
        )
        rows.append(f"<tr{attrs}>{cells}</tr>")
    return (
        f"<details><summary>The numbers</summary><table><caption hidden>{escape(caption)}"
        f"</caption><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></details>"
    )
