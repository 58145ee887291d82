"""The catalogue is the one description of the tables: the doc, the allow-list, the builders
and the call plan all follow it."""

from __future__ import annotations

import ast
import inspect
import textwrap

from skyprep_source import plan, routes_doc
from skyprep_source.catalogue import READ_ROUTES, TABLES, resource_specs
from skyprep_source.client import SIDE_EFFECT_ROUTES
from skyprep_source.source import BUILDERS


def test_committed_routes_doc_is_generated_from_the_catalogue() -> None:
    doc = routes_doc.DOC.read_text(encoding="utf-8")
    assert routes_doc.with_tables(doc) == doc, (
        "docs/routes.md is stale: run python -m skyprep_source.routes_doc"
    )


def test_stale_routes_doc_is_detected() -> None:
    doc = routes_doc.DOC.read_text(encoding="utf-8")
    stale = doc.replace("| `users` | `get_users` |", "| `users` | `get_users_old` |")
    assert routes_doc.with_tables(stale) != stale


def test_read_routes_are_every_catalogue_route_and_no_side_effect_route() -> None:
    for spec in TABLES.values():
        assert spec.route in READ_ROUTES, spec.name
        if spec.confirm:
            assert spec.confirm[0] in READ_ROUTES, spec.name
    assert not READ_ROUTES & SIDE_EFFECT_ROUTES


def test_every_parent_is_built_before_the_tables_that_fan_out_over_it() -> None:
    order = [spec.name for spec in TABLES.values()]
    for spec in TABLES.values():
        if spec.parent:
            assert order.index(spec.parent) < order.index(spec.name), spec.name
        if spec.written_by:
            assert TABLES[spec.written_by].written_by is None, spec.name


def test_every_resource_has_a_builder_and_every_cost_model_a_price() -> None:
    for spec in resource_specs():
        assert (spec.builder or spec.kind) in BUILDERS, spec.name
        if spec.cost_model:
            assert hasattr(plan._Planner, f"cost_{spec.cost_model}"), spec.name


def test_every_key_column_is_in_its_schema() -> None:
    for spec in TABLES.values():
        for column in spec.primary_key:
            assert column in spec.schema.fields, (spec.name, column)


def test_the_plan_prices_by_kind_without_naming_tables() -> None:
    tree = ast.parse(textwrap.dedent(inspect.getsource(plan._Planner.price)))
    named = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    assert not named & set(TABLES), named & set(TABLES)


def test_a_table_is_opt_in_exactly_when_its_skyprep_argument_is_off_by_default() -> None:
    from skyprep_source.source import skyprep

    defaults = {
        name: parameter.default for name, parameter in inspect.signature(skyprep).parameters.items()
    }
    for spec in TABLES.values():
        if spec.enabled_by is None:
            assert not spec.opt_in, spec.name
            continue
        assert spec.enabled_by in defaults, f"{spec.name}: no skyprep() argument {spec.enabled_by}"
        assert spec.opt_in == (not defaults[spec.enabled_by]), spec.name
    assert not TABLES["saved_reports"].opt_in
