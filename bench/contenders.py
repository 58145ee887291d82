"""The benchmark's contenders, each run as its own process by `bench/run.py`.

    python bench/contenders.py {source,naive_dlt,floor} --base-url URL --workdir DIR --result FILE

Each contender loads users, courses and course progresses from a running sandbox into a
DuckDB file inside `--workdir` and writes a JSON result: the seconds spent loading (imports
and interpreter start excluded, the same for every contender), the rows in the destination,
and the process's own peak RSS as the kernel recorded it. `bench/run.py` also polls the RSS
of the whole process tree from outside; the larger of the two is reported.

The three contenders make the same calls: list routes paged with `per_page`/`page` until a
short page, course progresses per course.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import orjson

TABLES = ("users", "courses", "course_progresses")
DATASET = "skyprep_data"
#: (table, route) of the two account-wide lists; progresses are paged per course.
LIST_ROUTES = (("users", "get_users"), ("courses", "get_courses"))
PROGRESS_ROUTE = "get_course_progresses"


def peak_rss_mb() -> float:
    """The kernel's high-water mark of this process's (and its waited children's) RSS, MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0  # ru_maxrss is in KiB on Linux


def credentials_form(args: argparse.Namespace) -> dict[str, str]:
    """The vendor's documented way to authenticate: key and account in the POST form body."""
    return {"api_key": args.api_key, "acct_key": args.acct_key}


class RssSampler:
    """Samples this process's RSS and Arrow's pool in a thread: the peak of each stage."""

    def __init__(self, interval_s: float = 0.02) -> None:
        import threading

        import psutil

        self._process = psutil.Process()
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._rss_peak = 0
        self._arrow_peak = 0

    def _run(self) -> None:
        import pyarrow as pa

        while not self._stop.is_set():
            self._rss_peak = max(self._rss_peak, self._process.memory_info().rss)
            self._arrow_peak = max(self._arrow_peak, pa.total_allocated_bytes())
            self._stop.wait(self._interval_s)

    def start_stage(self) -> None:
        self._rss_peak = self._process.memory_info().rss
        self._arrow_peak = 0

    def stage_peaks(self) -> dict[str, float]:
        return {
            "peak_rss_mb": round(self._rss_peak / 2**20, 1),
            "peak_arrow_pool_mb": round(self._arrow_peak / 2**20, 1),
        }

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- floor: the same calls, raw bytes straight to DuckDB's read_json -------------------


def run_floor(args: argparse.Namespace) -> dict[str, Any]:
    """Fetch every page and hand its raw bytes to DuckDB's `read_json`: no typing at all.

    The pages are written to files as they arrive (memory stays bounded by a page), then
    one `read_json` per table loads them. The only Python work on a body is counting its
    records, which any client needs to find the last page.
    """
    import requests

    workdir = Path(args.workdir)
    raw = workdir / "raw"
    for table in TABLES:
        (raw / table).mkdir(parents=True, exist_ok=True)
    form = credentials_form(args)
    page_size = args.page_size
    calls = 0

    def fetch_all(
        session: requests.Session, route: str, table: str, params: dict[str, Any], tag: str
    ) -> Iterator[bytes]:
        nonlocal calls
        page = 1
        while True:
            response = session.post(
                f"{args.base_url}/{route}",
                data={**form, **params, "per_page": page_size, "page": page},
            )
            response.raise_for_status()
            calls += 1  # int += under the GIL is good enough for a tally read after join
            body = response.content
            (raw / table / f"{tag}-{page:06d}.json").write_bytes(body)
            yield body
            if len(orjson.loads(body)) < page_size:
                return
            page += 1

    started = time.perf_counter()
    session = requests.Session()
    course_ids: list[Any] = []
    for table, route in LIST_ROUTES:
        for body in fetch_all(session, route, table, {}, table):
            if table == "courses":
                course_ids.extend(record["id"] for record in orjson.loads(body))

    def fetch_course(course_id: Any) -> None:
        with requests.Session() as course_session:
            for _ in fetch_all(
                course_session,
                PROGRESS_ROUTE,
                "course_progresses",
                {"course_id": course_id},
                f"c{course_id}",
            ):
                pass

    with ThreadPoolExecutor(max_workers=max(1, args.concurrency)) as pool:
        list(pool.map(fetch_course, course_ids))

    db_path = workdir / "floor.duckdb"
    with duckdb.connect(str(db_path)) as con:
        con.execute(f"create schema if not exists {DATASET}")
        for table in TABLES:
            load_raw_pages(con, table, str(raw / table / "*.json"))
        seconds = time.perf_counter() - started
        rows = {table: _count(con, f"{DATASET}.{table}") for table in TABLES}
        world = {
            "users": rows["users"],
            "courses": rows["courses"],
            # every course, including those without progresses (they still cost one call)
            "progresses_per_course": {str(course_id): 0 for course_id in course_ids}
            | {
                str(course_id): n
                for course_id, n in con.execute(
                    f"select course_id, count(*) from {DATASET}.course_progresses group by 1"
                ).fetchall()
            },
        }
    return {"seconds": seconds, "rows": rows, "calls": calls, "world": world}


def load_raw_pages(con: duckdb.DuckDBPyConnection, table: str, pattern: str) -> None:
    """One `read_json` over a table's page files, DuckDB's own inference and nothing else.

    The pages share one record shape, so the schema sampled from the first files holds
    (`union_by_name` would cost several times the read itself on a million rows). Should a
    later file not fit it, DuckDB raises and the slower, shape-agnostic read is used.
    """
    sql = (
        f"create or replace table {DATASET}.{table} as "
        "select * from read_json(?, format='array'{})"
    )
    try:
        con.execute(sql.format(""), [pattern])
    except duckdb.Error:
        con.execute(sql.format(", union_by_name=true"), [pattern])


# --- naive dlt: what dlt's REST tutorial leads a user to write --------------------------


def run_naive_dlt(args: argparse.Namespace) -> dict[str, Any]:
    """A `@dlt.resource` per route yielding `response.json()` page by page, dlt defaults.

    This is the tutorial's shape: dlt's retrying `requests`, a `while True` paging loop,
    the parsed JSON dicts handed to dlt, which infers the schema, normalises the dicts (and
    unnests the arrays into child tables) and writes insert-values files for DuckDB.
    `--progress-limit` stops after the course whose progresses reach that many rows, so the
    slow contender can run on a subset and be compared in rows per second.
    """
    import dlt
    from dlt.sources.helpers import requests

    form = credentials_form(args)
    page_size = args.page_size

    def pages(route: str, **params: Any) -> Iterator[list[dict[str, Any]]]:
        page = 1
        while True:
            response = requests.post(
                f"{args.base_url}/{route}",
                data={**form, **params, "per_page": page_size, "page": page},
            )
            response.raise_for_status()
            records = response.json()
            yield records
            if len(records) < page_size:
                break
            page += 1

    @dlt.resource(name="users")
    def users() -> Iterator[list[dict[str, Any]]]:
        yield from pages("get_users")

    @dlt.resource(name="courses")
    def courses() -> Iterator[list[dict[str, Any]]]:
        yield from pages("get_courses")

    loaded = 0

    # the tutorial's way to read a child route per parent record: a transformer fed by the
    # parent resource, so the courses list is read once
    @dlt.transformer(name="course_progresses", data_from=courses)
    def course_progresses(course_page: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        nonlocal loaded
        for course in course_page:
            if args.progress_limit and loaded >= args.progress_limit:
                return
            for progress_page in pages(PROGRESS_ROUTE, course_id=course["id"]):
                loaded += len(progress_page)
                yield progress_page

    workdir = Path(args.workdir)
    started = time.perf_counter()
    pipeline = dlt.pipeline(
        pipeline_name="bench_naive_dlt",
        pipelines_dir=str(workdir / "pipelines"),
        destination=dlt.destinations.duckdb(str(workdir / "naive_dlt.duckdb")),
        dataset_name=DATASET,
    )
    pipeline.run([users(), courses, course_progresses])
    seconds = time.perf_counter() - started
    with duckdb.connect(str(workdir / "naive_dlt.duckdb"), read_only=True) as con:
        rows = {table: _count(con, f"{DATASET}.{table}") for table in TABLES}
    return {"seconds": seconds, "rows": rows}


# --- source: this project's source with its defaults -------------------------------------


def run_source(args: argparse.Namespace) -> dict[str, Any]:
    """`skyprep(...)` with its defaults, the three resources, into a DuckDB file set up as
    `skyprep run` sets up its default destination.

    Run twice with the same `--workdir`, the second run is the incremental sync: the
    result's `rows_in_this_load` counts the rows carrying this run's load ids.
    """
    import dlt

    from skyprep_source import skyprep
    from skyprep_source.duckdb_destination import duckdb_destination

    workdir = Path(args.workdir)
    db_path = workdir / "source.duckdb"
    kwargs: dict[str, Any] = {
        "api_key": args.api_key,
        "acct_key": args.acct_key,
        "base_url": args.base_url,
        "requests_per_minute": args.requests_per_minute,
    }
    if args.source_page_size:
        kwargs["page_size"] = args.source_page_size
    rows_before = _data_table_rows(db_path)
    started = time.perf_counter()
    source = skyprep(**kwargs)
    if args.resources:
        source = source.with_resources(*args.resources)
    # the destination `skyprep run` uses by default (DuckDB with its memory bounded), here
    # in a file of the workdir
    pipeline = dlt.pipeline(
        pipeline_name="bench_source",
        pipelines_dir=str(workdir / "pipelines"),
        destination=duckdb_destination(str(db_path)),
        dataset_name=DATASET,
    )
    stages: dict[str, dict[str, float]] = {}
    if args.stages:
        # the same run as pipeline.run, one step at a time, to see where time and memory go
        with RssSampler() as sampler:
            for stage, step in (
                ("extract", lambda: pipeline.extract(source)),
                ("normalize", pipeline.normalize),
                ("load", pipeline.load),
            ):
                stage_started = time.perf_counter()
                sampler.start_stage()
                result = step()
                stages[stage] = {
                    "seconds": round(time.perf_counter() - stage_started, 3),
                    **sampler.stage_peaks(),
                }
        load_ids = list(result.loads_ids)
    else:
        load_ids = list(pipeline.run(source).loads_ids)
    seconds = time.perf_counter() - started
    with duckdb.connect(str(db_path), read_only=True) as con:
        present = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = ?",
                [DATASET],
            ).fetchall()
        }
        data_tables = sorted(t for t in present if not t.startswith("_dlt"))
        rows = {table: _count(con, f"{DATASET}.{table}") for table in TABLES if table in present}
        current_rows = {
            table: _count(con, f"{DATASET}.{table}", _current_filter(con, table))
            for table in TABLES
            if table in present
        }
        rows_in_this_load = {table: rows_written_by(con, table, load_ids) for table in data_tables}
    # history tables (write disposition append, e.g. platform_counts) gain a row every run
    schema_tables = pipeline.default_schema.tables
    append_only = sorted(
        t for t in data_tables if schema_tables.get(t, {}).get("write_disposition") == "append"
    )
    # an appended Arrow row carries no load id nor scd2 dates: the rows it added are the count
    for table, total in _data_table_rows(db_path).items():
        if table in append_only:
            rows_in_this_load[table] = total - rows_before.get(table, 0)
    return {
        "seconds": seconds,
        "rows": current_rows,
        "rows_total": rows,
        "load_ids": load_ids,
        "rows_in_this_load": rows_in_this_load,
        "append_only_tables": append_only,
        "tables": data_tables,
        "stages": stages,
    }


# --- plumbing ---------------------------------------------------------------------------


def _data_table_rows(db_path: Path) -> dict[str, int]:
    """Rows of every data table of the dataset ({} before the first load)."""
    if not db_path.exists():
        return {}
    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = ?",
                [DATASET],
            ).fetchall()
            if not name.startswith("_dlt")
        ]
        return {table: _count(con, f"{DATASET}.{table}") for table in tables}


def _has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    found = con.execute(
        "select count(*) from information_schema.columns "
        "where table_schema = ? and table_name = ? and column_name = ?",
        [DATASET, table, column],
    ).fetchone()
    return bool(found and found[0])


def rows_written_by(con: duckdb.DuckDBPyConnection, table: str, load_ids: list[str]) -> int:
    """Rows of `table` this run's loads inserted or retired.

    With `_dlt_load_id` in the table, the rows carrying one of the load ids. Arrow items
    carry no `_dlt_load_id` by default; scd2 then stamps `_dlt_valid_from` (insert) and
    `_dlt_valid_to` (retire) with the load's own time, which is the load id as a Unix
    timestamp, so a row touched by the load carries it in one of them.
    """
    if not load_ids:
        return 0
    if _has_column(con, table, "_dlt_load_id"):
        return _count(
            con, f"{DATASET}.{table}", "_dlt_load_id in (select unnest(?::varchar[]))", [load_ids]
        )
    if not _has_column(con, table, "_dlt_valid_from"):
        return 0
    stamps = [round(float(load_id) * 1_000_000) for load_id in load_ids]
    # a microsecond of slack: the load id is a float, the stamp a microsecond timestamp
    touched = " or ".join(
        f"abs(epoch_us({column}) - s) <= 1" for column in ("_dlt_valid_from", "_dlt_valid_to")
    )
    return _count(
        con,
        f"{DATASET}.{table}",
        f"exists (select 1 from unnest(?::bigint[]) as t(s) where {touched})",
        [stamps],
    )


def _current_filter(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    """scd2 tables keep history: the current rows are those not yet retired."""
    return "_dlt_valid_to is null" if _has_column(con, table, "_dlt_valid_to") else None


def _count(
    con: duckdb.DuckDBPyConnection,
    table: str,
    where: str | None = None,
    params: list[Any] | None = None,
) -> int:
    sql = f"select count(*) from {table}" + (f" where {where}" if where else "")
    found = con.execute(sql, params or []).fetchone()
    return int(found[0]) if found else 0


CONTENDERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "floor": run_floor,
    "naive_dlt": run_naive_dlt,
    "source": run_source,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("contender", choices=sorted(CONTENDERS))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", default="sandbox-api-key")
    parser.add_argument("--acct-key", default="sandbox.skyprepapp.com")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--result", required=True, help="where to write the JSON result")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1, help="floor: parallel courses")
    parser.add_argument("--progress-limit", type=int, default=0, help="naive_dlt: row cap")
    parser.add_argument(
        "--requests-per-minute",
        type=int,
        default=None,
        help="source: rate budget (omit for none)",
    )
    parser.add_argument(
        "--source-page-size", type=int, default=None, help="source: page_size (omit: default)"
    )
    parser.add_argument(
        "--resources",
        nargs="*",
        default=list(TABLES),
        help="source: selection (given empty: every default resource)",
    )
    parser.add_argument(
        "--stages", action="store_true", help="source: extract, normalize, load one by one"
    )
    parser.add_argument("--profile", default=None, help="write a cProfile of the load here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    run = CONTENDERS[args.contender]
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(run, args)
        profiler.dump_stats(args.profile)
    else:
        result = run(args)
    result["contender"] = args.contender
    result["peak_rss_mb_self"] = peak_rss_mb()
    Path(args.result).write_text(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
