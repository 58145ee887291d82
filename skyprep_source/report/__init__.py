"""The compliance report: one self-contained HTML file written from the marts after a load.

```python
from skyprep_source.report import build_report
result = build_report(pipeline)            # ./skyprep_report.html
print(result.path, result.size_bytes)
```

`build_report` reads the marts of the pipeline's destination (DuckDB, PostgreSQL, ...) with
small aggregate queries (`report.marts`), turns each question into a section with a chart, a
one-line reading and the chart's numbers (`report.sections`), and writes one page with every
style, chart and script inline (`report.page`, charts as hand-written SVG: `report.svg`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt

from skyprep_source import REPORT_FILE
from skyprep_source.models import DEFAULT_ANALYTICS_DATASET
from skyprep_source.report import page, sections
from skyprep_source.report.marts import MartReader

log = logging.getLogger(__name__)


@dataclass
class ReportResult:
    """What `build_report` wrote: the file, its size, which sections have a chart, and the
    notes of those that have none (a mart not built, no data yet)."""

    path: Path
    size_bytes: int
    charts: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        missing = f", {len(self.notes)} without a chart" if self.notes else ""
        return f"{self.path} ({self.size_bytes / 1024:.0f} KB, {len(self.charts)} charts{missing})"


def account_name(pipeline: Any) -> str:
    """The account shown at the top: the configured acct_key, else the pipeline's name."""
    acct_key: Any = None
    with contextlib.suppress(Exception):  # an unreadable config is no reason to fail the report
        acct_key = dlt.config.get("sources.skyprep.acct_key")
    return str(acct_key) if acct_key else str(pipeline.pipeline_name)


def build_report(
    pipeline: Any,
    output: str | os.PathLike[str] = REPORT_FILE,
    *,
    analytics_dataset: str = DEFAULT_ANALYTICS_DATASET,
    account: str | None = None,
) -> ReportResult:
    """Write the compliance report of `pipeline`'s marts (in `analytics_dataset`) to `output`.

    A mart that is missing, an empty account and a single load give sections that say so; a
    section whose query fails says that too (and is listed in `ReportResult.errors`) rather
    than costing the whole report. The file is replaced atomically.
    """
    generated_at = dt.datetime.now(dt.timezone.utc)
    with pipeline.sql_client() as client:
        reader = MartReader(client, analytics_dataset)
        ctx = sections.context(reader)
        figures = sections.headline(reader, ctx)
        built: list[sections.Section] = []
        errors: dict[str, str] = {}
        for build in sections.SECTIONS:
            try:
                built.append(build(reader, ctx))
            except Exception as failure:  # one broken section must not cost the report
                first = (str(failure).strip().splitlines() or [type(failure).__name__])[0]
                log.warning("report section %s failed: %s", build.__name__, first)
                errors[build.__name__] = first
                built.append(
                    sections.Section(
                        build.__name__, build.__name__, note=f"Could not be drawn: {first}"
                    )
                )
    html = page.render(
        account=account or account_name(pipeline),
        source=f"{pipeline.destination.destination_name}:{analytics_dataset}",
        as_of=ctx.as_of,
        loads=len(ctx.loads),
        figures=figures,
        sections=built,
        generated_at=generated_at,
    )
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = html.encode("utf-8")
    # written beside the target, then renamed: a reader never sees half a file; plain
    # open() so the file gets the usual permissions (the report is meant to be shared)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return ReportResult(
        path=path,
        size_bytes=len(data),
        charts=[s.key for s in built if s.chart],
        notes={s.key: s.note for s in built if s.note and not s.chart},
        errors=errors,
    )


__all__ = ["ReportResult", "build_report"]
