"""skyprep-source: a dlt source for the SkyPrep LMS admin API.

```python
import dlt
from skyprep_source import skyprep, PIPELINE_NAME, DATASET_NAME, DUCKDB_FILE

pipeline = dlt.pipeline(PIPELINE_NAME, destination=dlt.destinations.duckdb(DUCKDB_FILE),
                        dataset_name=DATASET_NAME)
pipeline.run(skyprep())   # api_key / acct_key from [sources.skyprep] or SOURCES__SKYPREP__*
```

The names below are imported on first use (PEP 562): `import skyprep_source.cli` loads
neither dlt nor pyarrow, so `skyprep --help` answers at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skyprep_source.catalogue import READ_ROUTES, ROW_HASH
    from skyprep_source.catalogue import TABLES as ENDPOINTS
    from skyprep_source.catalogue import TableSpec as Endpoint
    from skyprep_source.client import DEFAULT_BASE_URL, SkyPrepClient
    from skyprep_source.errors import (
        SkyPrepAPIError,
        SkyPrepCredentialsError,
        SkyPrepError,
        SkyPrepRequestFailed,
        SkyPrepRouteRefused,
    )
    from skyprep_source.models import ModelSettings, build_models
    from skyprep_source.plan import CallPlan, plan_run
    from skyprep_source.source import skyprep

PIPELINE_NAME = "skyprep"
DATASET_NAME = "skyprep_data"
DUCKDB_FILE = "skyprep.duckdb"
ANALYTICS_DATASET_NAME = "skyprep_analytics"  # the models' dataset (skyprep_source.models)
REPORT_FILE = "skyprep_report.html"  # the HTML report's default file (skyprep_source.report)

# public name -> (module, name in it)
_LAZY: dict[str, tuple[str, str]] = {
    "DEFAULT_BASE_URL": ("skyprep_source.client", "DEFAULT_BASE_URL"),
    "SkyPrepClient": ("skyprep_source.client", "SkyPrepClient"),
    "READ_ROUTES": ("skyprep_source.catalogue", "READ_ROUTES"),
    "ROW_HASH": ("skyprep_source.catalogue", "ROW_HASH"),
    # the catalogue's old names: a table spec was called an endpoint
    "ENDPOINTS": ("skyprep_source.catalogue", "TABLES"),
    "Endpoint": ("skyprep_source.catalogue", "TableSpec"),
    "SkyPrepAPIError": ("skyprep_source.errors", "SkyPrepAPIError"),
    "SkyPrepCredentialsError": ("skyprep_source.errors", "SkyPrepCredentialsError"),
    "SkyPrepError": ("skyprep_source.errors", "SkyPrepError"),
    "SkyPrepRequestFailed": ("skyprep_source.errors", "SkyPrepRequestFailed"),
    "SkyPrepRouteRefused": ("skyprep_source.errors", "SkyPrepRouteRefused"),
    "ModelSettings": ("skyprep_source.models", "ModelSettings"),
    "build_models": ("skyprep_source.models", "build_models"),
    "CallPlan": ("skyprep_source.plan", "CallPlan"),
    "plan_run": ("skyprep_source.plan", "plan_run"),
    "skyprep": ("skyprep_source.source", "skyprep"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "ANALYTICS_DATASET_NAME",
    "DATASET_NAME",
    "DEFAULT_BASE_URL",
    "DUCKDB_FILE",
    "ENDPOINTS",
    "PIPELINE_NAME",
    "READ_ROUTES",
    "REPORT_FILE",
    "ROW_HASH",
    "CallPlan",
    "Endpoint",
    "ModelSettings",
    "SkyPrepAPIError",
    "SkyPrepClient",
    "SkyPrepCredentialsError",
    "SkyPrepError",
    "SkyPrepRequestFailed",
    "SkyPrepRouteRefused",
    "build_models",
    "plan_run",
    "skyprep",
]
