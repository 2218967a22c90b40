"""headwater.yaml: validation errors name key and line; ${ENV}; secrets stay secret."""

from __future__ import annotations

import json

import pytest

from headwater.config import Project, load_project, parse_project
from headwater.core import ConfigError, redact, register_secret

GOOD = """\
project: shop
stores:
  warehouse:
    kind: duckdb
    path: .headwater/w.duckdb
pipelines:
  orders:
    source: {kind: files, path: data/*.csv}
    table: orders
    mode: merge
    primary_key: [order_id]
"""


def test_a_good_file_parses() -> None:
    project = parse_project(GOOD)
    assert project.project == "shop"
    assert project.pipelines["orders"].primary_key == ["order_id"]
    assert project.stores["warehouse"].kind == "duckdb"


def test_defaults_without_a_file(tmp_path) -> None:
    project = load_project(tmp_path)
    assert project.stores["warehouse"].kind == "duckdb"
    assert project.root == tmp_path.resolve()


def test_bad_value_names_key_line_and_value() -> None:
    with pytest.raises(ConfigError) as err:
        parse_project(GOOD.replace("mode: merge", "mode: upsert"))
    text = str(err.value)
    assert "line 10" in text and "pipelines.orders.mode" in text and "'upsert'" in text


def test_missing_key_names_its_parent_line() -> None:
    with pytest.raises(ConfigError, match=r"line 7, pipelines\.orders\.table: Field required"):
        parse_project(GOOD.replace("    table: orders\n", ""))


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"line 12, pipelines\.orders\.tabel"):
        parse_project(GOOD + "    tabel: x\n")


def test_merge_needs_a_primary_key() -> None:
    with pytest.raises(ConfigError, match="primary_key"):
        parse_project(GOOD.replace("    primary_key: [order_id]\n", ""))


def test_unknown_store_is_named() -> None:
    with pytest.raises(ConfigError, match="store 'lake'"):
        parse_project(GOOD + "    store: lake\n")


def test_env_interpolation_and_defaults() -> None:
    text = "project: ${NAME}\nmetadata:\n  url: ${URL:-sqlite:///x.db}\n"
    project = parse_project(text, env={"NAME": "p1"})
    assert project.project == "p1"
    assert project.metadata.url.get_secret_value() == "sqlite:///x.db"


def test_missing_env_var_names_key_and_line() -> None:
    with pytest.raises(ConfigError, match=r"line 3, key stores\.warehouse\.url: .*PGPASS"):
        parse_project("stores:\n  warehouse:\n    url: postgresql://a:${PGPASS}@h/db\n"
                      "    kind: postgres\n", env={})


def test_secrets_from_files_as_docker_and_kubernetes_mount_them(tmp_path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pg").write_text("s3cr:et\n")
    (tmp_path / "token").write_text("tok")
    text = ("stores:\n  warehouse:\n    kind: postgres\n"
            "    url: postgresql://u:${file:secrets/pg}@h/db\n"
            "metadata:\n  url: sqlite:///${META}.db\n")
    project = parse_project(text, root=tmp_path, env={"META_FILE": str(tmp_path / "token")})
    assert project.stores["warehouse"].url.get_secret_value() == "postgresql://u:s3cr:et@h/db"
    assert project.metadata.url.get_secret_value() == "sqlite:///tok.db"
    with pytest.raises(ConfigError, match=r"line 4, key stores\.warehouse\.url: cannot read "
                       r"the secret file .*nope"):
        parse_project(text.replace("secrets/pg", "nope"), root=tmp_path, env={"META": "m"})
    with pytest.raises(ConfigError, match="META_FILE") as err:
        parse_project(text, root=tmp_path, env={})
    assert "s3cr" not in str(err.value)


def test_secrets_do_not_leak_into_errors_or_repr() -> None:
    text = "stores:\n  warehouse:\n    kind: postgres\n    url: postgresql://u:hunter22@h/db\n"
    project = parse_project(text)
    assert "hunter22" not in repr(project)
    assert "hunter22" not in project.model_dump_json()
    with pytest.raises(ConfigError) as err:
        parse_project(text + "    schema: 12\n    bogus: postgresql://u:hunter22@h/db\n")
    assert "hunter22" not in str(err.value)


def test_redact_masks_registered_secrets_and_url_passwords() -> None:
    register_secret("tok-123456")
    assert redact("Authorization: Bearer tok-123456") == "Authorization: Bearer ***"
    assert redact("mysql://root:pw@host/db") == "mysql://root:***@host/db"


def test_yaml_syntax_error_has_line() -> None:
    with pytest.raises(ConfigError, match=r"line 2, column \d+: not valid YAML"):
        parse_project("project: x\n  bad: indentation\n")


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="key 'project' appears twice"):
        parse_project("project: a\nproject: b\n")


def test_json_schema_lists_every_section() -> None:
    schema = Project.model_json_schema()
    assert {"stores", "pipelines", "metadata", "logging", "metrics"} <= set(schema["properties"])
    json.dumps(schema)
