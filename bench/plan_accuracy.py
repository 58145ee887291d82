"""How close the call plan comes to the calls a run really makes, on the sandbox.

    .venv/bin/python bench/plan_accuracy.py [tiny|demo] [default|opt-in]

Plans a run (`skyprep_source.plan.plan_run`), runs it into a DuckDB file in a temporary
directory, and compares the plan's total with the sandbox's count of calls
(`Sandbox.stats()["calls_total"]`). Also prints the plan's time at 100 calls per minute.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

import dlt

from skyprep_sandbox import Sandbox, World
from skyprep_source import skyprep
from skyprep_source.plan import plan_run


def measure(scale: str, opt_in: bool) -> str:
    """One planned and one real run of a fresh world; the comparison as one line."""
    os.environ["NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"] = "true"
    world = World.generate(seed=7, scale=scale)
    with Sandbox(world) as sb, tempfile.TemporaryDirectory() as root:
        config: dict[str, Any] = {
            "api_key": sb.api_key,
            "acct_key": sb.acct_key,
            "base_url": sb.base_url,
            "requests_per_minute": None,
            "async_report_poll_s": 0.01,
        }
        if opt_in:
            config.update(
                per_user_resources=["user_gamification_balances", "user_skill_balances"],
                manager_permission_pairs=[(world.users.ids()[0], world.user_groups.ids()[0])],
                async_reports=["all_users"],
                course_item_progress_course_ids=[world.courses.ids()[0]],
            )
        plan = plan_run(config)
        at_budget = plan_run({**config, "requests_per_minute": 100})
        sb.reset_stats()
        pipeline = dlt.pipeline(
            "plan_accuracy",
            pipelines_dir=root,
            destination=dlt.destinations.duckdb(os.path.join(root, "skyprep.duckdb")),
            dataset_name="skyprep_data",
        )
        pipeline.run(skyprep(**config))
        actual = int(sb.stats()["calls_total"])
    error = 100 * (plan.total_calls - actual) / actual
    return (
        f"{scale} {'opt-in' if opt_in else 'default'}: planned {plan.total_calls} "
        f"(+{plan.planning_calls} to plan), actual {actual}, error {error:+.1f}%; "
        f"at 100 calls/min about {at_budget.seconds / 60:.1f} min"
    )


if __name__ == "__main__":
    scale = sys.argv[1] if len(sys.argv) > 1 else "tiny"
    mode = sys.argv[2] if len(sys.argv) > 2 else "default"
    print(measure(scale, mode == "opt-in"))
