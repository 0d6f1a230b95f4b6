"""The catalog's `:name` parameters as PostgreSQL's `$n` (relatorios/sql_params.py), and the
catalog's dialect rule (docs/catalog.md, "Sources and dialects"). The C worker's twin scanner
(app/sql_params.c) runs the same cases end to end in tests/edge_catalog_postgresql/."""

from __future__ import annotations

from pathlib import Path

import pytest

from relatorios.catalog import CatalogError, for_source, load_catalog
from relatorios.sql_params import SqlParamError, param_names, to_numbered


@pytest.mark.parametrize(
    ("sql", "numbered", "names"),
    [
        ("SELECT :a, :b, :a", "SELECT $1, $2, $1", ["a", "b"]),
        ("SELECT x::text, :a::int", "SELECT x::text, $1::int", ["a"]),
        ("SELECT ':a', 'it''s :a', :b", "SELECT ':a', 'it''s :a', $1", ["b"]),
        ("SELECT E'\\':a', :b", "SELECT E'\\':a', $1", ["b"]),
        ("SELECT e'x\\\\', :b", "SELECT e'x\\\\', $1", ["b"]),
        ("SELECT $$ :a $$, $t$ :a $ $t$, :b", "SELECT $$ :a $$, $t$ :a $ $t$, $1", ["b"]),
        ('SELECT ":a" AS ":b", :c', 'SELECT ":a" AS ":b", $1', ["c"]),
        ("SELECT 1 -- :a\n, :b", "SELECT 1 -- :a\n, $1", ["b"]),
        ("SELECT /* :a /* :b */ :c */ :d", "SELECT /* :a /* :b */ :c */ $1", ["d"]),
        ("SELECT 'sem parâmetros'", "SELECT 'sem parâmetros'", []),
    ],
)
def test_parameters_become_numbers_outside_literals_casts_and_comments(
    sql: str, numbered: str, names: list[str]
) -> None:
    assert to_numbered(sql) == (numbered, names)
    assert param_names(sql) == names


@pytest.mark.parametrize(
    "sql",
    ["SELECT :Ano", "SELECT 'aberto", "SELECT /* aberto", 'SELECT "x', "SELECT $$ x", "SELECT $1"],
)
def test_a_bad_name_or_an_open_literal_is_refused(sql: str) -> None:
    with pytest.raises(SqlParamError):
        to_numbered(sql)


def test_each_source_gets_its_dialect_file_or_the_shared_sql(tmp_path: Path) -> None:
    (tmp_path / "postgresql").mkdir()
    (tmp_path / "COMUM.sql").write_text(
        "-- @sources sqlite postgresql\nSELECT :a AS a;\n-- @param a text"
    )
    (tmp_path / "DOIS.sql").write_text("-- @param a text\nSELECT printf('%s', :a) AS a;\n")
    (tmp_path / "postgresql" / "DOIS.sql").write_text("SELECT format('%s', :a::text) AS a\n")
    (tmp_path / "SO_SQLITE.sql").write_text("SELECT sqlite_version() AS v;\n")
    catalog = load_catalog(tmp_path)
    assert sorted(for_source(catalog, "postgresql")) == ["COMUM", "DOIS"]
    assert sorted(for_source(catalog, "sqlite")) == ["COMUM", "DOIS", "SO_SQLITE"]
    assert catalog["COMUM"].sql_for("postgresql") == catalog["COMUM"].sql
    assert catalog["DOIS"].sql_for("postgresql").startswith("SELECT format")
    assert catalog["DOIS"].sql_for("sqlite").endswith("SELECT printf('%s', :a) AS a;\n")


def test_a_dialect_file_must_use_the_declared_parameters(tmp_path: Path) -> None:
    (tmp_path / "postgresql").mkdir()
    (tmp_path / "R.sql").write_text("-- @param a text\nSELECT :a AS a;\n")
    (tmp_path / "postgresql" / "R.sql").write_text("SELECT :b AS a\n")
    with pytest.raises(CatalogError, match=r"postgresql/R\.sql"):
        load_catalog(tmp_path)


def test_an_unknown_source_is_refused(tmp_path: Path) -> None:
    (tmp_path / "R.sql").write_text("-- @sources oracle\nSELECT 1 AS um;\n")
    with pytest.raises(CatalogError, match="@sources"):
        load_catalog(tmp_path)
