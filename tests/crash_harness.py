"""Run `skyprep` and SIGKILL the process itself at a chosen point (for the crash tests).

    SKYPREP_CRASH_AT=<point>:<n> python tests/crash_harness.py run [flags]

The process is killed with a real `SIGKILL` (no handler, no cleanup, no `finally`) the n-th
time the run reaches `<point>`; without SKYPREP_CRASH_AT it is plain `skyprep`. The points
hook dlt's and the job's own functions, so a kill lands at the same place on every machine:

- `extract`: before the n-th HTTP request to SkyPrep (reading, nothing extracted yet);
- `normalize`: when normalize spools the n-th file set of a package;
- `load-committed`: a load job committed in the destination, before dlt records it as done
  (dlt writes its "pending transition" marker after the commit: the window where dlt would
  run the job again); `load-committed:<table>/copy` (or `/merge`) picks the job of a table;
- `load-recorded`: right after the n-th job's marker is written (or a table's, as above);
- `load-followup`: after the followup (merge) jobs are created, before the job moves on;
- `load-package`: the package's `_dlt_loads` row written, before the package is archived;
- `models`: while building the models, at the n-th SQL statement.

Test support only: the product has no crash hook.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def _kill_on(counter: dict[str, int], limit: int) -> None:
    counter["n"] += 1
    if counter["n"] == limit:
        _kill()


def _kill() -> None:
    sys.stderr.write(f"[crash_harness] SIGKILL at {os.environ['SKYPREP_CRASH_AT']}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _is_job(file_name: str, table: str, kind: str) -> bool:
    """Whether a load job file is `table`'s copy job (data file) or merge job (SQL)."""
    name_table, _, rest = file_name.partition(".")
    is_sql = rest.endswith(".sql")
    return name_table == table and (is_sql if kind == "merge" else not is_sql)


def install(point: str, when: str) -> None:
    """Patch the function where `point` lies so that its n-th call kills the process (`when`
    is n), or for the load points the first job of a table (`when` is `<table>/copy` or
    `<table>/merge`)."""
    counter = {"n": 0}
    job: tuple[str, str] | None = None
    limit = 0
    if "/" in when:
        table, _, kind = when.partition("/")
        job = (table, kind)
    else:
        limit = int(when or 1)

    def before(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _kill_on(counter, limit)
            return original(*args, **kwargs)

        setattr(owner, name, wrapper)

    def after(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            _kill_on(counter, limit)
            return result

        setattr(owner, name, wrapper)

    if point == "extract":
        import requests

        before(requests.Session, "send")
    elif point == "normalize":
        from dlt.normalize.normalize import Normalize

        before(Normalize, "spool_files")
    elif point in ("load-committed", "load-recorded") and job is not None:
        from dlt.common.storages.load_package import PackageStorage

        original = PackageStorage.save_pending_transition

        def on_job(self: Any, load_id: str, file_name: str, *args: Any, **kwargs: Any) -> Any:
            hit = _is_job(file_name, *job)
            if hit and point == "load-committed":
                _kill()
            result = original(self, load_id, file_name, *args, **kwargs)
            if hit:
                _kill()
            return result

        PackageStorage.save_pending_transition = on_job  # type: ignore[method-assign]
    elif point == "load-committed":
        from dlt.common.storages.load_package import PackageStorage

        before(PackageStorage, "save_pending_transition")
    elif point == "load-recorded":
        from dlt.common.storages.load_package import PackageStorage

        after(PackageStorage, "save_pending_transition")
    elif point == "load-followup":
        from dlt.load.load import Load

        after(Load, "create_followup_jobs")
    elif point == "load-package":
        from dlt.common.storages.load_storage import LoadStorage

        before(LoadStorage, "complete_load_package")
    elif point == "models":
        import skyprep_source.models as models

        original_render = models.render_statements

        def render(*args: Any, **kwargs: Any) -> Any:
            for statement in original_render(*args, **kwargs):
                _kill_on(counter, limit)
                yield statement

        models.render_statements = render  # type: ignore[assignment]
    else:
        raise SystemExit(f"crash_harness: unknown point {point!r}")


def main() -> int:
    crash_at = os.environ.get("SKYPREP_CRASH_AT")
    if crash_at:
        point, _, when = crash_at.partition(":")
        install(point, when)
    from skyprep_source.cli import main as skyprep_main

    return skyprep_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
