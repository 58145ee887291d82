"""skyprep-source: a dlt source for the SkyPrep LMS admin API.

```python
import dlt
from skyprep_source import skyprep, PIPELINE_NAME, DATASET_NAME, DUCKDB_FILE

pipeline = dlt.pipeline(PIPELINE_NAME, destination=dlt.destinations.duckdb(DUCKDB_FILE),
                        dataset_name=DATASET_NAME)
pipeline.run(skyprep())   # api_key / acct_key from [sources.skyprep] or SOURCES__SKYPREP__*
```
"""

from skyprep_source.client import DEFAULT_BASE_URL, READ_ROUTES, SkyPrepClient
from skyprep_source.endpoints import ENDPOINTS, ROW_HASH, Endpoint
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

__all__ = [
    "DATASET_NAME",
    "DEFAULT_BASE_URL",
    "DUCKDB_FILE",
    "ENDPOINTS",
    "PIPELINE_NAME",
    "READ_ROUTES",
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
