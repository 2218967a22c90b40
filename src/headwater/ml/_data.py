"""Datasets for training: from a warehouse table, an SQL query, or a CSV/Parquet file."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from headwater.core import ConfigError, FileFormatError, NotFoundError
from headwater.monitor import get_logger

if TYPE_CHECKING:
    import pandas as pd

    from headwater.config import Project

log = get_logger(__name__)

Task = Literal["classification", "regression"]

#: Fewest rows ``check_training_data`` accepts.
MIN_ROWS = 30
#: Fewest rows of the smaller class.
MIN_CLASS_ROWS = 10

_FILE_SUFFIXES = {".csv", ".tsv", ".txt", ".parquet", ".pq"}
_QUERY = re.compile(r"^\s*(select|with|from|values|\()\b", re.IGNORECASE)


@dataclass
class Dataset:
    """A table ready for training: the raw frame, its target column and where it came from.

    ``X`` is every column but the target (and ``drop``); ``y`` the target. Nothing is cleaned
    here: cleaning is fitted inside the scikit-learn pipeline (see :mod:`headwater.ml._prepare`).
    """

    frame: pd.DataFrame
    target: str
    source: str
    task: Task = "classification"
    drop: list[str] = field(default_factory=list)
    #: For classification: the label that counts as positive (e.g. ``"Yes"``), else None.
    positive: Any = None

    @property
    def X(self) -> pd.DataFrame:
        """The feature columns, raw."""
        return self.frame.drop(columns=[self.target, *self.drop])

    @property
    def y(self) -> pd.Series:
        """The target: 0/1 for classification (1 = ``positive``), floats for regression."""
        col = self.frame[self.target]
        if self.task == "regression":
            return col.astype("float64")
        return (col == self.positive).astype("int64")


def read_frame(source: str | Path, *, project: Project | None = None) -> tuple[pd.DataFrame, str]:
    """Read ``source`` into pandas: a CSV/Parquet file, a SELECT query, or a warehouse table.

    Returns the frame and a description of where it came from. Raises
    :class:`~headwater.core.NotFoundError` for a missing file or table and
    :class:`~headwater.core.FileFormatError` for a file that cannot be parsed.
    """
    text = str(source)
    path = project.path(text) if project is not None else Path(text).expanduser()
    if path.suffix.lower() in _FILE_SUFFIXES or path.is_file():
        return _read_file(path), str(path)
    if project is None:
        raise ConfigError(f"'{text}' is not a file, and without a project there is no warehouse "
                          "to read a table or query from",
                          hint="pass a CSV/Parquet path, or run inside a headwater project")
    from headwater.store import open_store

    store = open_store(project, read_only=True)
    try:
        if _QUERY.match(text):
            table = store.query(text)
            where = "query"
        else:
            known = store.tables()
            if text not in known:
                close = difflib.get_close_matches(text, known, n=3)
                raise NotFoundError(
                    f"'{text}' is neither a file nor a table in the warehouse "
                    f"(tables: {', '.join(known) or 'none'})",
                    hint=f"did you mean {', '.join(close)}?" if close else
                    "load it first (`headwater ingest ...`), or pass a CSV/Parquet path")
            table = store.read_table(text)
            where = f"table {text}"
    finally:
        store.close()
    return table.to_pandas(), where


def _read_file(path: Path) -> pd.DataFrame:
    import pandas as pd
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if not path.exists():
        raise NotFoundError(f"no file {path}", hint="check the path (relative paths start at "
                            "the project folder)")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pq.read_table(path).to_pandas()
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        # Strings stay strings: type inference happens in the pipeline, where it is reported.
        table = pcsv.read_csv(path, parse_options=pcsv.ParseOptions(delimiter=delimiter),
                              convert_options=pcsv.ConvertOptions(strings_can_be_null=False))
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"cannot read {path}: {exc}",
                              hint="training reads CSV (with a header line) and Parquet") from None
    frame = table.to_pandas()
    if frame.empty:
        raise FileFormatError(f"{path} has no rows", hint="check the file")
    return pd.DataFrame(frame)


def infer_task(y: pd.Series) -> Task:
    """Classification for a target of text, booleans or at most 10 distinct integers."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return "classification"
    values = y.dropna()
    if values.nunique() <= 10 and (values == values.round()).all():
        return "classification"
    return "regression"


def positive_label(y: pd.Series) -> Any:
    """The label that means 'yes': Yes/True/1/churn-like words, else the rarer class."""
    values = list(y.dropna().unique())
    for v in values:
        if str(v).strip().lower() in {"yes", "y", "true", "1", "t", "churn", "churned", "positive"}:
            return v
    counts = y.value_counts()
    return counts.index[-1]


def load_dataset(source: str | Path, target: str, *, project: Project | None = None,
                 task: Literal["auto", "classification", "regression"] = "auto",
                 drop: list[str] | None = None) -> Dataset:
    """Load a dataset and check it can be trained on.

    Parameters
    ----------
    source:
        A CSV/Parquet file, a ``SELECT`` query, or a warehouse table name.
    target:
        The column to predict; matched case-insensitively if there is no exact match.
    project:
        The project whose warehouse holds tables and against which paths resolve.
    task:
        ``auto`` (default) infers classification or regression from the target.
    drop:
        Columns never used as features.

    Raises
    ------
    ConfigError
        The target column is missing, has one class, too few rows, or no usable features.
    """
    frame, where = read_frame(source, project=project)
    return make_dataset(frame, target, source=where, task=task, drop=drop)


def make_dataset(frame: pd.DataFrame, target: str, *, source: str = "frame",
                 task: Literal["auto", "classification", "regression"] = "auto",
                 drop: list[str] | None = None) -> Dataset:
    """Check a frame for training (see :func:`load_dataset`) and wrap it as a Dataset."""
    target = _find_column(frame, target, source, what="target column")
    drop = [_find_column(frame, c, source, what="column in drop") for c in drop or []]
    missing = frame[target].isna() | (frame[target].astype("string").str.strip() == "")
    if missing.any():
        log.warning("target_missing_rows_dropped", source=source, column=target,
                    rows=int(missing.sum()))
        frame = frame.loc[~missing.to_numpy()].reset_index(drop=True)
    chosen: Task = infer_task(frame[target]) if task == "auto" else task
    dataset = Dataset(frame=frame, target=target, source=source, task=chosen,
                      drop=[c for c in drop if c != target])
    if chosen == "classification":
        dataset.positive = positive_label(frame[target])
    check_training_data(dataset)
    return dataset


def check_training_data(dataset: Dataset) -> None:
    """Raise ConfigError if the dataset cannot give a trustworthy model."""
    frame, target, source = dataset.frame, dataset.target, dataset.source
    n = len(frame)
    if n < MIN_ROWS:
        raise ConfigError(f"{source}: only {n} rows with a target in column '{target}'; "
                          f"training needs at least {MIN_ROWS}",
                          hint="train on more data (a model from a handful of rows cannot be "
                          "validated)")
    if dataset.task == "classification":
        counts = frame[target].value_counts()
        if len(counts) < 2:
            only = counts.index[0] if len(counts) else None
            raise ConfigError(f"{source}: target column '{target}' has one class only "
                              f"({only!r} in all {n} rows)",
                              hint="check the target column and the rows selected; a classifier "
                              "needs examples of both outcomes")
        if len(counts) > 2:
            raise ConfigError(f"{source}: target column '{target}' has {len(counts)} classes "
                              f"({', '.join(map(str, counts.index[:5]))}...); churn training "
                              "is binary", hint="map the target to two values, or set "
                              "task: regression for a numeric target")
        if counts.min() < MIN_CLASS_ROWS:
            raise ConfigError(f"{source}: target column '{target}' has only {counts.min()} rows "
                              f"of class {counts.idxmin()!r}; need at least {MIN_CLASS_ROWS}",
                              hint="train on more data with examples of the rare class")
    features = dataset.X
    if features.shape[1] == 0:
        raise ConfigError(f"{source}: no feature columns besides the target '{target}'",
                          hint="the data needs columns to predict from")
    usable = [c for c in features.columns if _has_values(features[c])]
    if not usable:
        raise ConfigError(f"{source}: every feature column is empty (all null or blank): "
                          f"{', '.join(map(str, features.columns[:10]))}",
                          hint="check the source: the columns were read but hold no values")


def _has_values(col: pd.Series) -> bool:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return bool(col.notna().any())
    return bool((col.dropna().astype("string").str.strip() != "").any())


def _find_column(frame: pd.DataFrame, name: str, source: str, *, what: str) -> str:
    if name in frame.columns:
        return name
    folded = {str(c).lower(): str(c) for c in frame.columns}
    if name.lower() in folded:
        return folded[name.lower()]
    close = difflib.get_close_matches(name, [str(c) for c in frame.columns], n=3, cutoff=0.5)
    raise ConfigError(
        f"{source}: no {what} '{name}' (columns: {', '.join(map(str, frame.columns[:30]))})",
        hint=(f"did you mean {', '.join(repr(c) for c in close)}? " if close else "")
        + "pass --target COLUMN or set ml.train.<task>.target in headwater.yaml")
