"""headwater.yaml: the project file, validated by pydantic, with errors that name key and line."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from headwater.config._alerts import AlertsSpec
from headwater.config._brokers import (
    DEFAULT_BROKER,
    BrokerSpec,
    EmbeddedBrokerSpec,
    default_brokers,
)
from headwater.config._contract import ContractSpec
from headwater.config._deploy import DeploySpec
from headwater.config._ml import MLSpec
from headwater.config._sources import SourceSpec
from headwater.config._stores import DuckDBStoreSpec, StoreSpec
from headwater.config._stream import ProcessorSpec
from headwater.config._yaml import dotted, line_of, load_yaml, read_text
from headwater.core import ConfigError, redact

PROJECT_FILE = "headwater.yaml"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MetadataSpec(_Spec):
    """Where run records live: SQLite under .headwater/ by default, or PostgreSQL by URL."""

    url: SecretStr | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///.headwater/metadata.db"
    )


class LoggingSpec(_Spec):
    """JSON-lines log files under ``dir``; readable lines on the terminal at ``level``."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    console_level: Literal["debug", "info", "warning", "error"] = "warning"
    dir: str = ".headwater/logs"
    rotate_mb: int = Field(50, ge=1, description="start a new log file past this size")
    keep: int = Field(5, ge=0, description="how many rotated log files to keep")


class MetricsSpec(_Spec):
    """Prometheus metrics: a textfile per process, and optionally a Pushgateway."""

    textfile_dir: str | None = ".headwater/metrics"
    pushgateway: str | None = Field(None, description="e.g. http://localhost:9091")


class PipelineSpec(_Spec):
    """One pipeline: a source, an optional contract (cleansing and rules), a table in a store."""

    source: SourceSpec
    table: str = Field(description="destination table name")
    store: str = Field("warehouse", description="name of an entry under `stores`")
    mode: Literal["append", "replace", "merge"] = "append"
    primary_key: list[str] = Field(default_factory=list, description="columns for mode: merge")
    contract: str | ContractSpec | None = Field(
        None, description="a contract file (relative to the project) or an inline contract"
    )
    schedule: str | None = Field(
        None, description="'every 15m', 'every 1h' or a cron expression, for `headwater schedule`"
    )

    @model_validator(mode="after")
    def _merge_needs_key(self) -> PipelineSpec:
        if self.mode == "merge" and not self.primary_key:
            raise ValueError("mode 'merge' needs primary_key: [column, ...]")
        return self


class Project(_Spec):
    """The whole of headwater.yaml."""

    project: str = Field("headwater", description="a name for this project")
    stores: dict[str, StoreSpec] = Field(
        default_factory=lambda: {"warehouse": DuckDBStoreSpec()},
        description="named stores; `warehouse` is the default sink and what `headwater sql` "
        "queries",
    )
    brokers: dict[str, BrokerSpec] = Field(
        default_factory=default_brokers,
        description="named streaming platforms; `embedded` (the embedded log under "
        ".headwater/streams) always exists and is the default",
    )
    metadata: MetadataSpec = Field(default_factory=MetadataSpec)
    logging: LoggingSpec = Field(default_factory=LoggingSpec)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    pipelines: dict[str, PipelineSpec] = Field(default_factory=dict)
    processors: dict[str, ProcessorSpec] = Field(
        default_factory=dict, description="stream processors: `headwater stream run NAME`")
    ml: MLSpec = Field(default_factory=MLSpec)
    alerts: AlertsSpec = Field(default_factory=AlertsSpec,
                               description="alert rules, sinks and routes")
    deploy: DeploySpec = Field(default_factory=DeploySpec)

    #: The folder headwater.yaml lives in; relative paths resolve against it.
    root: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _stores_named(self) -> Project:
        self.stores.setdefault("warehouse", DuckDBStoreSpec())
        for name, pipeline in self.pipelines.items():
            if pipeline.store not in self.stores:
                raise ValueError(
                    f"pipeline '{name}' names store '{pipeline.store}', "
                    f"but stores has only {sorted(self.stores)}"
                )
        self.brokers.setdefault(DEFAULT_BROKER, EmbeddedBrokerSpec())
        for broker_name, broker in self.brokers.items():
            broker._name = broker_name
        check_broker_names(self.brokers, self.pipelines)
        for name, processor in self.processors.items():
            if processor.input.broker not in self.brokers:
                raise ValueError(
                    f"processors.{name}.input.broker: '{processor.input.broker}' is not a "
                    f"broker in {PROJECT_FILE} (brokers: {', '.join(sorted(self.brokers))})")
            if processor.outputs.store not in self.stores:
                raise ValueError(
                    f"processors.{name}.outputs.store: '{processor.outputs.store}' is not a "
                    f"store (stores: {', '.join(sorted(self.stores))})")
        return self

    def path(self, relative: str | Path) -> Path:
        """Resolve a project-relative path (absolute paths are kept)."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def state_dir(self) -> Path:
        """The project's ``.headwater`` folder."""
        return self.root / ".headwater"

    def broker(self, name: str = DEFAULT_BROKER) -> BrokerSpec:
        """The broker called ``name`` (``embedded`` by default), or an error listing them."""
        try:
            return self.brokers[name]
        except KeyError:
            raise ConfigError(
                f"no broker '{name}' in {PROJECT_FILE} "
                f"(brokers: {', '.join(sorted(self.brokers))})",
                hint="add it under `brokers:` (kind: embedded, nats, kafka or kinesis) or check "
                "the spelling",
            ) from None

    def processor(self, name: str) -> ProcessorSpec:
        """The stream processor called ``name``, or an error listing the ones that exist."""
        try:
            return self.processors[name]
        except KeyError:
            known = ", ".join(sorted(self.processors)) or "none yet"
            raise ConfigError(
                f"no processor '{name}' in {PROJECT_FILE} (processors: {known})",
                hint="add it under `processors:` or check the spelling",
            ) from None

    def pipeline(self, name: str) -> PipelineSpec:
        """The pipeline called ``name``, or an error listing the ones that exist."""
        try:
            return self.pipelines[name]
        except KeyError:
            known = ", ".join(sorted(self.pipelines)) or "none yet"
            raise ConfigError(
                f"no pipeline '{name}' in {PROJECT_FILE} (pipelines: {known})",
                hint="add it under `pipelines:` or check the spelling",
            ) from None


def check_broker_names(brokers: dict, pipelines: dict) -> None:
    """Every pipeline whose source reads a stream names a broker under ``brokers``."""
    for name, pipeline in pipelines.items():
        broker = getattr(pipeline.source, "broker", None)
        if broker is not None and broker not in brokers:
            raise ValueError(
                f"pipelines.{name}.source.broker: '{broker}' is not a broker in "
                f"{PROJECT_FILE} (brokers: {', '.join(sorted(brokers))}); add it under "
                "`brokers:` or use `embedded`"
            )


def parse_project(text: str, *, origin: str = PROJECT_FILE, root: Path | None = None,
                  env: dict[str, str] | None = None) -> Project:
    """Validate headwater.yaml text; errors name every bad key with its line.

    >>> parse_project("project: demo").project
    'demo'
    """
    data, lines = load_yaml(text, origin=origin, env=env, root=root)
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of keys",
                          hint="start with `project: NAME`")
    try:
        project = Project.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, lines, origin),
                          hint="`headwater config schema` prints every key with its type") from None
    project.root = (root or Path(".")).resolve()
    return project


def load_project(path: str | Path | None = None) -> Project:
    """Load headwater.yaml from ``path`` (a file or folder), or from the current folder.

    Without a file, the embedded defaults apply (DuckDB warehouse, SQLite metadata).
    """
    target = Path(path or ".")
    file = target if target.suffix in {".yaml", ".yml"} else target / PROJECT_FILE
    if not file.exists():
        if path is not None and target.suffix in {".yaml", ".yml"}:
            read_text(file)  # raises the clear 'no such file' error
        project = Project()
        project.root = file.parent.resolve()
        return project
    return parse_project(read_text(file), origin=str(file), root=file.parent)


def _explain(exc: ValidationError, lines: dict, origin: str) -> str:
    errors = _without_union_noise(exc.errors(include_url=False))
    out = [f"{origin} has {len(errors)} problem(s):"]
    for err in errors:
        loc = _real_loc(err["loc"], lines)
        line = line_of(lines, loc)
        where = f"line {line}, " if line else ""
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        if any(s in dotted(loc).lower() for s in ("password", "token", "secret", "url")):
            shown = ""
        out.append(f"  {where}{dotted(loc)}: {err['msg']}{shown}")
    return redact("\n".join(out))


def _without_union_noise(errors: list) -> list:
    """For a field that is 'a file name or an inline mapping', drop the 'not a string' error
    when the mapping itself has problems to report."""
    tags = {"str", "int", "float", "bool", "dict[str,any]", "list[str]"}

    def is_tag_error(err: dict) -> bool:
        return bool(err["loc"]) and str(err["loc"][-1]) in tags

    real = [tuple(e["loc"]) for e in errors if not is_tag_error(e)]
    return [e for e in errors
            if not (is_tag_error(e) and any(r[:len(e["loc"]) - 1] == tuple(e["loc"][:-1])
                                            for r in real))]


def _real_loc(loc: tuple, lines: dict) -> tuple:
    """Drop the parts pydantic adds that are not keys in the file (union tags, validators)."""
    out: tuple = ()
    for i, part in enumerate(loc):
        if (*out, part) in lines:
            out = (*out, part)
        elif str(part).startswith("function-"):
            continue
        elif i + 1 < len(loc) and (*out, loc[i + 1]) in lines:
            continue  # a union tag such as 'files' or 'duckdb'
        elif i + 1 == len(loc) and (*out, "kind") in lines:
            continue  # a discriminated union's tag (`kind: threshold`) at the end
        elif i + 1 == len(loc) or (*out, part) not in lines:
            out = (*out, part) if not _is_tag_only(loc, i, out, lines) else out
    return out


def _is_tag_only(loc: tuple, i: int, out: tuple, lines: dict) -> bool:
    # a tag followed by keys that are missing: keep the missing key, drop the tag
    return i + 1 < len(loc) and isinstance(loc[i + 1], str) and out in lines
