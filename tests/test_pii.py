"""The `pii` setting end to end: the sandbox over HTTP into a DuckDB file, and what the tables,
the load packages and the trace hold afterwards."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import dlt
import pytest

from skyprep_sandbox import Sandbox
from skyprep_source import DATASET_NAME, skyprep
from skyprep_source.pii import PiiPolicy

SALT = "pii-salt-9d2e41"


def run(sandbox: Sandbox, root: Path, **options: Any) -> dlt.Pipeline:
    pipeline = dlt.pipeline(
        pipeline_name="skyprep_pii",
        pipelines_dir=str(root / "pipelines"),
        destination=dlt.destinations.duckdb(str(root / "skyprep.duckdb")),
        dataset_name=DATASET_NAME,
    )
    pipeline.run(
        skyprep(
            api_key=sandbox.api_key,
            acct_key=sandbox.acct_key,
            base_url=sandbox.base_url,
            requests_per_minute=None,
            **options,
        )
    )
    return pipeline


def column(pipeline: dlt.Pipeline, table: str, name: str) -> list[Any]:
    with pipeline.sql_client() as client:
        rows = client.execute_sql(f"select {name} from {DATASET_NAME}.{table} order by 1")
    return [row[0] for row in rows]


def hmac_hex(value: str) -> str:
    return hmac.new(SALT.encode(), value.encode(), hashlib.sha256).hexdigest()


def files_under(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_hash_replaces_every_personal_value_stably_and_joins_still_hold(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    emails = sorted(str(u["email"]) for u in sandbox.world.records("get_users") if u["email"])
    pipeline = run(sandbox, tmp_path, pii="hash", pii_salt=SALT)
    assert sorted(column(pipeline, "users", "email")) == sorted(hmac_hex(e) for e in emails)
    # a progress's user_email hashes as its user's email: the join holds
    with pipeline.sql_client() as client:
        unmatched = client.execute_sql(
            f"select count(*) from {DATASET_NAME}.course_progresses p "
            f"left join {DATASET_NAME}.users u on u.email = p.user_email "
            "where p.user_email is not null and u.id is null"
        )[0][0]
    assert unmatched == 0
    reports = [
        t
        for t in pipeline.default_schema.data_table_names()
        if t.startswith("saved_report__")
        and "email" in pipeline.default_schema.tables[t]["columns"]
    ]
    assert reports, "a saved report with an Email column"
    for table in reports:
        assert set(column(pipeline, table, "email")) <= {hmac_hex(e) for e in emails} | {None}
    # no clear e-mail or salt anywhere: tables, load packages, state, trace
    everything = files_under(tmp_path)
    for email in emails[:10]:
        assert email.encode() not in everything
    assert SALT.encode() not in everything
    # stable: a second run with the same salt writes no new version
    with pipeline.sql_client() as client:
        before = client.execute_sql(f"select count(*) from {DATASET_NAME}.users")[0][0]
    run(sandbox, tmp_path, pii="hash", pii_salt=SALT)
    with pipeline.sql_client() as client:
        after = client.execute_sql(f"select count(*) from {DATASET_NAME}.users")[0][0]
    assert after == before


def test_drop_leaves_the_personal_columns_out(sandbox: Sandbox, tmp_path: Path) -> None:
    pipeline = run(sandbox, tmp_path, pii="drop")
    users = pipeline.default_schema.tables["users"]["columns"]
    assert not {"email", "username", "first_name", "last_name", "cell", "address"} & set(users)
    assert "payer_email" not in pipeline.default_schema.tables["payments"]["columns"]
    assert len(column(pipeline, "users", "id")) == len(sandbox.world.users.ids())


def test_hash_without_a_salt_names_the_secret_to_set() -> None:
    with pytest.raises(ValueError, match=r"pii_salt under \[sources\.skyprep\]"):
        PiiPolicy("hash")
    with pytest.raises(ValueError, match="keep, hash, drop"):
        PiiPolicy("mask")
    assert SALT not in repr(PiiPolicy("hash", SALT))
