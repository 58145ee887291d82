"""docs/routes.md's route tables, generated from the catalogue.

    python -m skyprep_source.routes_doc          # rewrite the tables in docs/routes.md
    python -m skyprep_source.routes_doc --check  # exit 1 when the committed doc is stale

Only the text between the `BEGIN`/`END` markers is generated; the prose around it is written
by hand. `tests/test_catalogue.py` fails when the committed tables differ from these.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from skyprep_source.catalogue import TABLES, TableSpec

BEGIN = (
    "<!-- BEGIN generated from skyprep_source/catalogue.py: python -m skyprep_source.routes_doc -->"
)
END = "<!-- END generated -->"
DOC = Path(__file__).resolve().parent.parent / "docs" / "routes.md"

_DEFAULT_KEPT = {
    "snapshot": "scd2 snapshot",
    "fan_out": "scd2 snapshot",
    "per_user": "scd2 snapshot",
    "derived": "scd2 snapshot",
    "window": "scd2 over a window",
    "one_record": "scd2, one row",
    "history": "appended",
    "download": "replaced",
    "report": "replaced",
}


def _table(spec: TableSpec) -> str:
    if spec.kind == "download":
        return "`saved_report__<name>`"
    if spec.kind == "report":
        return "`report__<type>[__<param>_<value>]`"
    return f"`{spec.name}`"


def _route(spec: TableSpec) -> str:
    if spec.route_doc:
        return spec.route_doc
    if spec.kind == "derived":
        if spec.written_by:
            return f"the same calls as `{spec.written_by}`: `{spec.unpack}`"
        return f"(the `{spec.unpack}` of `{spec.parent}`)"
    text = f"`{spec.route}`"
    if spec.id_param:
        text += f" (`{spec.id_param}`)"
    if spec.unpack and spec.kind in ("fan_out", "per_user"):
        text += f": {spec.unpack if ' ' in spec.unpack else f'`{spec.unpack}`'}"
    return text


def _calls(spec: TableSpec) -> str:
    if spec.calls_doc:
        return spec.calls_doc
    if spec.kind in ("snapshot", "window"):
        return "1"
    if spec.kind == "derived":
        return "0"
    if spec.kind in ("one_record", "history"):
        return str(spec.calls)
    return f"per {spec.per}"


def _key(spec: TableSpec) -> str:
    return ", ".join(f"`{k}`" for k in spec.primary_key) or "—"


def _argument(spec: TableSpec) -> str:
    if spec.written_by:
        return f"loaded with `{spec.written_by}`"
    if spec.enabled_by == "per_user_resources":
        return f'`per_user_resources=["{spec.name}"]`'
    if spec.enabled_by == "manager_permission_pairs":
        return "`manager_permission_pairs=[(user_id, user_group_id), ...]`"
    return f"`{spec.enabled_by}=[...]`"


def render_tables(specs: Sequence[TableSpec] | None = None) -> str:
    """The two route tables (loaded by default; opt-in) as Markdown."""
    specs = list(TABLES.values()) if specs is None else list(specs)
    lines = [
        "### Loaded by default",
        "",
        "| table | route | calls | key | how it is kept |",
        "|---|---|---|---|---|",
    ]
    for spec in specs:
        if not spec.opt_in:
            kept = spec.kept or _DEFAULT_KEPT[spec.kind]
            if spec.enabled_by:
                kept += f" (`{spec.enabled_by}=false` leaves it out)"
            cells: tuple[str, ...] = (_table(spec), _route(spec), _calls(spec), _key(spec), kept)
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "### Opt-in: one call per user or per record (absent unless asked for)",
        "",
        "| table | route | calls | key | argument | how it is kept |",
        "|---|---|---|---|---|---|",
    ]
    for spec in specs:
        if spec.opt_in:
            kept = spec.kept if spec.kept and not spec.written_by else _DEFAULT_KEPT[spec.kind]
            cells = (_table(spec), _route(spec), _calls(spec), _key(spec), _argument(spec), kept)
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def with_tables(doc: str) -> str:
    """`doc` with the text between the markers replaced by `render_tables()`."""
    start = doc.index(BEGIN) + len(BEGIN)
    end = doc.index(END, start)
    return doc[:start] + "\n" + render_tables() + doc[end:]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    doc = DOC.read_text(encoding="utf-8")
    fresh = with_tables(doc)
    if "--check" in args:
        if fresh != doc:
            print(f"{DOC} is stale: run python -m skyprep_source.routes_doc", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
