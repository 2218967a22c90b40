"""MLflow tracking and registry: embedded SQLite + local artifacts by default, any URI by config.

    tracker = Tracker.for_project(project)
    with tracker.start_run("churn", run_name="lightgbm"):
        tracker.log_params({...}); tracker.log_metrics({...}); tracker.log_figure(fig, "roc.png")
        uri = tracker.log_model(pipeline, input_example=X.head(5), metadata={...})
    version = tracker.register(uri, "churn", alias="challenger")
    model = load_model("churn@challenger", project=project)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.core import ConfigError, NotFoundError, require
from headwater.monitor import get_logger

if TYPE_CHECKING:
    import pandas as pd

    from headwater.config import Project

log = get_logger(__name__)

#: Version of what headwater writes into a model's metadata; bumped on incompatible changes.
MODEL_FORMAT = 1
_REF = re.compile(r"^(?P<name>[^@/]+?)(?:@(?P<alias>[\w.-]+)|/(?P<version>\d+|latest))?$")


def tracking_uris(project: Project) -> tuple[str, str, Path | None]:
    """(tracking URI, registry URI, artifact folder or None) for a project's ``ml:`` settings."""
    ml = project.ml
    if ml.tracking_uri is not None:
        tracking = ml.tracking_uri.get_secret_value()
        artifacts = None
    else:
        project.state_dir.mkdir(parents=True, exist_ok=True)
        tracking = f"sqlite:///{(project.state_dir / 'mlflow.db').resolve()}"
        artifacts = project.path(ml.artifacts).resolve()
    registry = ml.registry_uri.get_secret_value() if ml.registry_uri is not None else tracking
    return tracking, registry, artifacts


class Tracker:
    """Log runs to MLflow and manage the Model Registry.

    Parameters
    ----------
    tracking_uri:
        Any MLflow tracking URI (``sqlite:///...``, ``http://mlflow:5000``, ``file:...``).
    registry_uri:
        The registry URI (default: the tracking URI).
    artifacts:
        Folder for the artifacts of experiments this tracker creates (None: the server's default).
    experiment_prefix:
        Experiment names are ``prefix/task``.
    """

    def __init__(self, tracking_uri: str, *, registry_uri: str | None = None,
                 artifacts: Path | None = None, experiment_prefix: str = "headwater") -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.artifacts = artifacts
        self.experiment_prefix = experiment_prefix

    @classmethod
    def for_project(cls, project: Project) -> Tracker:
        """The tracker headwater.yaml describes."""
        tracking, registry, artifacts = tracking_uris(project)
        return cls(tracking, registry_uri=registry, artifacts=artifacts,
                   experiment_prefix=project.ml.experiment_prefix)

    # -- plumbing ------------------------------------------------------------------------------
    def _mlflow(self) -> Any:
        mlflow = require("mlflow", "ml")
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)
        return mlflow

    @property
    def client(self) -> Any:
        """An ``MlflowClient`` on this tracker's URIs."""
        self._mlflow()
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def experiment(self, task: str) -> str:
        """The id of experiment ``prefix/task`` (created, with local artifacts, if new)."""
        mlflow = self._mlflow()
        name = f"{self.experiment_prefix}/{task}"
        found = mlflow.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = None
        if self.artifacts is not None:
            self.artifacts.mkdir(parents=True, exist_ok=True)
            location = (self.artifacts / task).as_uri()
        return mlflow.create_experiment(name, artifact_location=location)

    @contextmanager
    def start_run(self, task: str, *, run_name: str | None = None, nested: bool = False,
                  tags: dict[str, str] | None = None) -> Iterator[Any]:
        """A run in experiment ``prefix/task``; nested under the active run if ``nested``."""
        mlflow = self._mlflow()
        experiment_id = self.experiment(task)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, nested=nested,
                              tags=tags) as active:
            yield active

    # -- logging (inside start_run) -------------------------------------------------------------
    def log_params(self, params: dict[str, Any]) -> None:
        """Log parameters (values are turned into short strings)."""
        mlflow = self._mlflow()
        mlflow.log_params({k: _short(v) for k, v in params.items()})

    def log_metrics(self, metrics: dict[str, float], *, step: int | None = None) -> None:
        """Log numeric metrics (None and NaN are skipped)."""
        mlflow = self._mlflow()
        clean = {k: float(v) for k, v in metrics.items() if v is not None and v == v}
        mlflow.log_metrics(clean, step=step)

    def log_figure(self, figure: Any, name: str) -> None:
        """Log a matplotlib figure as ``plots/name``."""
        self._mlflow().log_figure(figure, f"plots/{name}")

    def log_dict(self, data: Any, name: str) -> None:
        """Log a dict or list as JSON (or YAML by extension)."""
        self._mlflow().log_dict(data, name)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        """Log a local file."""
        self._mlflow().log_artifact(str(path), folder)

    def log_model(self, model: Any, *, input_example: pd.DataFrame,
                  metadata: dict[str, Any] | None = None, predict_fn: str = "predict",
                  requirements: list[str] | None = None) -> str:
        """Log a scikit-learn model with its signature (inferred from ``input_example``).

        ``metadata`` is stored with the model (e.g. threshold, target, column kinds) plus
        headwater's version and model format. ``requirements`` are its pip requirements;
        None lets MLflow infer them (it loads the model in a subprocess: seconds, and 20 s on
        a busy machine). Returns the model URI.
        """
        self._mlflow()
        import mlflow.sklearn
        from mlflow.models import infer_signature

        example = input_example.copy()
        output = getattr(model, predict_fn)(example)
        signature = infer_signature(example, output)
        meta = _model_metadata(metadata)
        info = mlflow.sklearn.log_model(model, name="model", signature=signature,
                                        input_example=example, metadata=meta,
                                        pyfunc_predict_fn=predict_fn,
                                        serialization_format="cloudpickle",
                                        pip_requirements=requirements)
        return info.model_uri

    def log_python_model(self, python_model: Any, *, input_example: pd.DataFrame,
                         metadata: dict[str, Any] | None = None,
                         requirements: list[str] | None = None) -> str:
        """Log an ``mlflow.pyfunc.PythonModel`` (e.g. a recommender) with its signature.

        The signature comes from ``python_model.predict(None, input_example)``; ``metadata``
        as in :meth:`log_model`; ``requirements`` are its pip requirements (given, so that
        MLflow does not start a process to infer them). Returns the model URI.
        """
        self._mlflow()
        import mlflow.pyfunc
        from mlflow.models import infer_signature

        from headwater._version import __version__

        output = python_model.predict(None, input_example.copy())
        signature = infer_signature(input_example, output)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=python_model, signature=signature,
            input_example=input_example, metadata=_model_metadata(metadata),
            pip_requirements=requirements or [f"headwater=={__version__}"])
        return info.model_uri

    # -- registry ----------------------------------------------------------------------------------
    def register(self, model_uri: str, name: str, *, alias: str | None = None,
                 tags: dict[str, str] | None = None) -> int:
        """Register ``model_uri`` as a new version of ``name``; point ``alias`` at it."""
        mlflow = self._mlflow()
        version = mlflow.register_model(model_uri, name, tags=tags)
        if alias:
            self.client.set_registered_model_alias(name, alias, version.version)
        log.info("model_registered", name=name, version=version.version, alias=alias)
        return int(version.version)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` of ``name`` at ``version`` (e.g. promote a challenger to champion)."""
        self._mlflow()
        self.client.set_registered_model_alias(name, alias, str(version))

    def models(self) -> list[dict[str, Any]]:
        """Registered models with their newest version and aliases."""
        out = []
        for model in self.client.search_registered_models():
            versions = sorted(model.latest_versions or [], key=lambda v: int(v.version))
            out.append({"name": model.name,
                        "latest": int(versions[-1].version) if versions else None,
                        "aliases": {a: int(v) for a, v in (model.aliases or {}).items()},
                        "updated": model.last_updated_timestamp})
        return out

    def resolve(self, ref: str) -> tuple[str, str | None, int | None]:
        """``name@alias``, ``name/version``, ``name`` (latest), ``models:/...`` or ``runs:/...``
        -> (model URI, name, version)."""
        if ref.startswith(("runs:/", "models:/", "file:")):
            return ref, None, None
        m = _REF.match(ref)
        if not m:
            raise ConfigError(f"'{ref}' is not a model reference",
                              hint="use NAME@ALIAS (e.g. churn@challenger) or NAME/VERSION")
        name, alias, version = m.group("name"), m.group("alias"), m.group("version")
        client = self.client
        from mlflow.exceptions import MlflowException

        try:
            if alias:
                mv = client.get_model_version_by_alias(name, alias)
            elif version and version != "latest":
                mv = client.get_model_version(name, version)
            else:
                found = client.search_model_versions(f"name = '{name}'")
                if not found:
                    raise MlflowException(f"no versions of {name}")
                mv = max(found, key=lambda v: int(v.version))
        except MlflowException:
            known = [m["name"] for m in self.models()]
            raise NotFoundError(
                f"no registered model '{ref}' in {_safe(self.registry_uri)} "
                f"(models: {', '.join(known) or 'none'})",
                hint="`headwater models` lists models with their versions and aliases; "
                "train one with `headwater train churn`") from None
        return f"models:/{name}/{mv.version}", name, int(mv.version)

    def load(self, ref: str) -> LoadedModel:
        """Load a registered (or logged) model with its signature and metadata."""
        self._mlflow()
        import mlflow.sklearn

        uri, name, version = self.resolve(ref)
        info = model_info(uri)
        model = mlflow.sklearn.load_model(uri)
        return LoadedModel(model=model, uri=uri, name=name, version=version,
                           signature=info.signature, metadata=dict(info.metadata or {}))


def _model_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """``metadata`` plus headwater's version and model format."""
    from headwater._version import __version__

    return {"headwater_version": __version__,
            "headwater_model_format": MODEL_FORMAT, **(metadata or {})}


def model_info(uri: str) -> Any:
    """An MLflow model's signature, metadata and flavors, for a registry URI or a local folder.

    A ``file:`` folder (an unpacked bundle) is read from its MLmodel file alone: MLflow's
    ``get_model_info`` would look its logged-model id up in a tracking store that is not there.
    """
    from mlflow.models import Model, get_model_info

    if uri.startswith("file:"):
        return Model.load(uri.removeprefix("file://").removeprefix("file:"))
    return get_model_info(uri)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."


def _safe(uri: str) -> str:
    """A URI without its password."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", uri)


@dataclass
class LoadedModel:
    """A model from the registry, ready to score frames after a signature check."""

    model: Any
    uri: str
    name: str | None
    version: int | None
    signature: Any
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``name/version`` or the URI."""
        return f"{self.name}/{self.version}" if self.name else self.uri

    @property
    def input_columns(self) -> dict[str, str]:
        """Input column -> MLflow type name, from the signature."""
        if self.signature is None or self.signature.inputs is None:
            return {}
        return {c.name: _type_name(c.type) for c in self.signature.inputs.inputs}

    def check_input(self, frame: pd.DataFrame, *, where: str = "input") -> pd.DataFrame:
        """Check ``frame`` against the signature; return it with columns in signature order.

        The training target, if present, is dropped. Raises ConfigError naming missing, extra,
        and wrongly typed columns.
        """
        return check_signature(frame, self.input_columns, kinds=self.metadata.get("columns", {}),
                               target=self.metadata.get("target"), where=where,
                               model=self.label)


def _type_name(t: Any) -> str:
    return str(getattr(t, "name", t)).lower()


_NUMERIC = {"double", "float", "long", "integer"}


def check_signature(frame: pd.DataFrame, expected: dict[str, str], *,
                    kinds: dict[str, str] | None = None, target: str | None = None,
                    where: str = "input", model: str = "the model") -> pd.DataFrame:
    """Compare a frame with a model's input columns (name -> MLflow type).

    ``kinds`` are the column kinds found at training (``numeric``, ``boolean``, ``categorical``,
    ...): a number column must hold numbers (or text that parses as numbers), a categorical or
    boolean column must not arrive as floats. Returns the frame restricted to and ordered by
    ``expected``.
    """
    import pandas as pd

    kinds = kinds or {}
    if not expected:
        return frame
    frame = frame.drop(columns=[target] if target and target in frame.columns else [])
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    wrong: list[str] = []
    for name, typ in expected.items():
        if name not in frame.columns:
            continue
        col = frame[name]
        kind = kinds.get(name)
        is_num = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        if kind == "numeric" or (kind is None and typ in _NUMERIC):
            if not is_num and not pd.api.types.is_bool_dtype(col):
                text = col.astype("string").str.strip()
                text = text[text.notna() & (text != "")]
                bad = text[pd.to_numeric(text, errors="coerce").isna()]
                if len(bad) > 0:
                    wrong.append(f"{name} (expected numbers, got text such as "
                                 f"{', '.join(repr(v) for v in bad.unique()[:3])})")
        elif (kind in {"categorical", "boolean"} or (kind is None and typ == "string")) and (
                pd.api.types.is_float_dtype(col) and col.notna().any() and not (
                    kind == "boolean" and col.dropna().isin([0.0, 1.0]).all())):
                wrong.append(f"{name} (expected text{' (Yes/No)' if kind == 'boolean' else ''}, "
                             f"got {col.dtype} numbers)")
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"missing column(s): {', '.join(missing)}")
        if extra:
            parts.append(f"extra column(s): {', '.join(map(str, extra))}")
        if wrong:
            parts.append(f"wrongly typed: {'; '.join(wrong)}")
        raise ConfigError(f"{where} does not match the signature of {model}: " + "; ".join(parts),
                          hint="score data with the columns and types the model was trained on "
                          f"({len(expected)} columns: {', '.join(list(expected)[:12])}"
                          f"{'...' if len(expected) > 12 else ''})")
    return frame[list(expected)]


def load_model(ref: str, *, project: Project) -> LoadedModel:
    """Load ``name@alias`` / ``name/version`` from the project's registry."""
    return Tracker.for_project(project).load(ref)
