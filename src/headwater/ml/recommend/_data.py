"""Interaction data: read it from files, tables or Arrow, weight event types, encode it sparse.

The normal form has one row per interaction: ``user``, ``item``, ``event`` (view, click,
add_to_cart, purchase, rating, ...), ``value`` (the rating, a price, or 1), ``timestamp``
(seconds since the epoch) and, when known, ``category``. MovieLens ``u.data`` (user, item,
rating, timestamp; tab-separated, no header) is recognised as such; other tables have their
columns matched by common names (``user_id``, ``visitorid``, ``product_id``, ``event_type``...).
The model server's interaction logs (a folder of ``interactions-<replica>`` topics, by default
``.headwater/serve``) are read as they are, so the next training sees what was served.

    data = load_interactions("u.data")
    data = load_interactions(["u.data", ".headwater/serve"])   # several sources together
    encoded = data.encode()          # users x items CSR of summed weights, last timestamps
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from headwater.core import ConfigError, FileFormatError, NotFoundError, require

if TYPE_CHECKING:
    import pyarrow as pa
    from scipy import sparse

    from headwater.config import Project

#: How much one event of each type counts; repeated events add up.
EVENT_WEIGHTS: dict[str, float] = {"view": 1.0, "click": 2.0, "add_to_cart": 4.0,
                                   "purchase": 8.0, "rating": 1.0, "interaction": 1.0}
_EVENT_ALIASES = {"addtocart": "add_to_cart", "cart": "add_to_cart", "transaction": "purchase",
                  "buy": "purchase", "order": "purchase", "play": "view", "watch": "view"}
_COLUMNS: dict[str, tuple[str, ...]] = {
    "user": ("user", "user_id", "userid", "visitorid", "visitor_id", "customer_id",
             "customerid", "customer"),
    "item": ("item", "item_id", "itemid", "product_id", "productid", "product", "movie_id",
             "movieid", "sku", "article_id"),
    "event": ("event", "event_type", "eventtype", "action", "type"),
    "value": ("value", "rating", "score", "quantity", "amount"),
    "timestamp": ("timestamp", "ts", "time", "event_time", "datetime", "created_at",
                  "occurred_at"),
    "category": ("category", "category_id", "categoryid", "genre"),
}
NORMAL_COLUMNS = ("user", "item", "event", "value", "timestamp", "category")


def normal_event(names: pd.Series) -> pd.Series:
    """Event names lower-cased, ``-`` and spaces as ``_``, common aliases mapped."""
    clean = names.astype("string").str.strip().str.lower().str.replace(r"[-\s]+", "_",
                                                                       regex=True)
    return clean.replace(_EVENT_ALIASES)


def _seconds(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(column):
        return _epoch(pd.to_datetime(column, utc=True))
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype="float64")
        return values / 1000.0 if np.nanmax(np.abs(values), initial=0) > 1e11 else values
    parsed = pd.to_datetime(column, utc=True, errors="coerce", format="mixed")
    if parsed.isna().any():
        bad = column[parsed.isna()].iloc[0]
        raise FileFormatError(f"timestamp {bad!r} is neither a number nor a date",
                              hint="use seconds since 1970 or ISO dates such as "
                              "2024-05-01T12:00:00Z")
    return _epoch(parsed)


def _epoch(stamps: pd.Series) -> np.ndarray:
    """UTC timestamps (any resolution) as float seconds since 1970."""
    return ((stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()).to_numpy(dtype="float64")


def normalise(frame: pd.DataFrame, *, source: str = "input",
              columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A frame in the normal form (see the module docstring) from any column naming.

    ``columns`` maps normal names to the frame's (e.g. ``{"user": "visitorid"}``); the rest are
    found by their common names. Without an event column every row is a ``rating`` when there is
    a value column, else an ``interaction``; without timestamps, the row order stands in.
    """
    lower = {str(c).lower(): c for c in frame.columns}
    found: dict[str, Any] = {}
    for name, aliases in _COLUMNS.items():
        given = (columns or {}).get(name)
        if given is not None:
            if given not in frame.columns:
                raise ConfigError(f"{source}: no column '{given}' for {name}",
                                  hint=f"columns are: {', '.join(map(str, frame.columns))}")
            found[name] = given
            continue
        match = next((lower[a] for a in aliases if a in lower), None)
        if match is not None:
            found[name] = match
    missing = [n for n in ("user", "item") if n not in found]
    if missing:
        raise ConfigError(f"{source}: no {' and no '.join(missing)} column",
                          hint="name them user/item (or user_id, product_id, ...), or pass "
                          "columns={'user': ..., 'item': ...}; columns are: "
                          + ", ".join(map(str, frame.columns)))
    out = pd.DataFrame({"user": frame[found["user"]].astype("string"),
                        "item": frame[found["item"]].astype("string")})
    if out["user"].isna().any() or out["item"].isna().any():
        raise FileFormatError(f"{source}: {int(out['user'].isna().sum())} rows without a user "
                              f"and {int(out['item'].isna().sum())} without an item",
                              hint="drop or repair those rows (a contract can quarantine them)")
    value = (pd.to_numeric(frame[found["value"]], errors="coerce").fillna(1.0)
             if "value" in found else pd.Series(1.0, index=frame.index))
    if "event" in found:
        out["event"] = normal_event(frame[found["event"]]).fillna("interaction")
    else:
        out["event"] = "rating" if "value" in found else "interaction"
    out["value"] = value.to_numpy(dtype="float64")
    out["timestamp"] = (_seconds(frame[found["timestamp"]]) if "timestamp" in found
                        else np.arange(len(frame), dtype="float64"))
    out["category"] = (frame[found["category"]].astype("string") if "category" in found
                       else pd.Series(pd.NA, index=frame.index, dtype="string"))
    return out.reset_index(drop=True)


def _is_udata(path: Path) -> bool:
    """True for a tab-separated file whose first line is four integers (MovieLens u.data)."""
    if path.suffix.lower() in {".csv", ".parquet", ".pq", ".json"}:
        return False
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        first = handle.readline().rstrip("\n").split("\t")
    return len(first) == 4 and all(part.strip().lstrip("-").isdigit() for part in first)


def read_udata(path: str | Path) -> pd.DataFrame:
    """MovieLens ``u.data`` (user, item, rating, timestamp; tabs, no header) in the normal form."""
    target = Path(path)
    if not target.is_file():
        raise NotFoundError(f"no file {target}", hint="pass the path of a u.data file")
    raw = pd.read_csv(target, sep="\t", header=None, names=["user", "item", "rating",
                                                             "timestamp"], dtype="int64")
    return normalise(raw.rename(columns={"rating": "value"}).assign(event="rating"),
                     source=str(target))


@dataclass
class Encoded:
    """Interactions as sparse matrices over integer indices of users and items.

    ``weights`` holds the summed event weights of each (user, item) pair; ``times`` the pair's
    last timestamp in the same sparsity structure (same ``indptr`` and ``indices``).
    """

    users: np.ndarray
    items: np.ndarray
    weights: sparse.csr_matrix
    times: sparse.csr_matrix
    categories: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(users, items)."""
        return self.weights.shape


@dataclass
class Interactions:
    """Interactions in the normal form, with where they came from.

    Parameters
    ----------
    frame:
        Columns ``user``, ``item``, ``event``, ``value``, ``timestamp``, ``category``.
    source:
        A description for messages and reports.
    """

    frame: pd.DataFrame
    source: str = "input"
    weights: dict[str, float] = field(default_factory=lambda: dict(EVENT_WEIGHTS))
    use_values: bool = False

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, source: str = "input",
                   columns: Mapping[str, str] | None = None, **kwargs: Any) -> Interactions:
        """Interactions from a pandas frame with any of the common column names."""
        return cls(normalise(frame, source=source, columns=columns), source=source, **kwargs)

    @classmethod
    def from_arrow(cls, table: pa.Table, *, source: str = "input",
                   columns: Mapping[str, str] | None = None, **kwargs: Any) -> Interactions:
        """Interactions from a pyarrow table (e.g. the server's interaction log)."""
        return cls.from_frame(table.to_pandas(), source=source, columns=columns, **kwargs)

    def weighted(self) -> np.ndarray:
        """Each row's weight: its event type's weight, times its value if ``use_values``."""
        events = self.frame["event"]
        unknown = sorted(set(events.unique()) - set(self.weights))
        if unknown:
            raise ConfigError(f"{self.source}: event type(s) {', '.join(map(str, unknown))} "
                              "have no weight",
                              hint="give every event type a weight, e.g. weights={'"
                              f"{unknown[0]}': 1.0}}; known: {', '.join(self.weights)}")
        weight = events.map(self.weights).to_numpy(dtype="float64")
        if self.use_values:
            weight = weight * self.frame["value"].to_numpy(dtype="float64")
        return weight

    def encode(self, *, users: np.ndarray | None = None,
               items: np.ndarray | None = None) -> Encoded:
        """Users x items CSR matrices of summed weights and last timestamps.

        ``users`` and ``items`` fix the first indices (e.g. a fitted model's catalogue); ids
        not among them are appended in order of appearance.
        """
        sparse_ = require("scipy.sparse", "recommend")
        frame = self.frame
        weight = self.weighted()
        keep = weight > 0
        user_ids = _extend(users, frame["user"].to_numpy(dtype=object)[keep])
        item_ids = _extend(items, frame["item"].to_numpy(dtype=object)[keep])
        u = pd.Index(user_ids).get_indexer(frame["user"].to_numpy(dtype=object)[keep])
        i = pd.Index(item_ids).get_indexer(frame["item"].to_numpy(dtype=object)[keep])
        pairs = pd.DataFrame({"u": u, "i": i, "w": weight[keep],
                              "t": frame["timestamp"].to_numpy(dtype="float64")[keep]})
        grouped = pairs.groupby(["u", "i"], sort=True).agg(w=("w", "sum"), t=("t", "max"))
        rows = grouped.index.get_level_values(0).to_numpy()
        cols = grouped.index.get_level_values(1).to_numpy().astype(np.int32)
        shape = (len(user_ids), len(item_ids))
        indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=shape[0]))].astype(np.int64)
        weights = sparse_.csr_matrix((grouped["w"].to_numpy(dtype="float32"), cols, indptr),
                                     shape=shape)
        times = sparse_.csr_matrix((grouped["t"].to_numpy(dtype="float64"), cols.copy(),
                                    indptr.copy()), shape=shape)
        return Encoded(users=user_ids, items=item_ids, weights=weights, times=times,
                       categories=self._categories(item_ids))

    def _categories(self, items: np.ndarray) -> np.ndarray | None:
        known = self.frame.dropna(subset=["category"])
        if known.empty:
            return None
        last = known.drop_duplicates("item", keep="last").set_index("item")["category"]
        return last.reindex(items).to_numpy(dtype=object)


def _extend(fixed: np.ndarray | None, seen: np.ndarray) -> np.ndarray:
    """``fixed`` followed by the ids of ``seen`` not in it, in order of first appearance."""
    fresh = pd.unique(seen)
    if fixed is None or len(fixed) == 0:
        return np.asarray(fresh, dtype=object)
    new = fresh[pd.Index(fixed).get_indexer(fresh) < 0]
    return np.concatenate([np.asarray(fixed, dtype=object), np.asarray(new, dtype=object)])


#: The model server's interaction log topics are named ``interactions-<replica>``.
LOG_TOPIC_PREFIX = "interactions-"
#: What every record of an interaction log holds.
LOG_COLUMNS = (("user", "string"), ("item", "string"), ("event", "string"),
               ("value", "float64"), ("timestamp", "float64"), ("category", "string"))


def log_topics(folder: str | Path) -> list[str]:
    """The interaction log topics in ``folder`` (an embedded log), sorted; [] for none."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.is_dir() and p.name.startswith(LOG_TOPIC_PREFIX))


def read_interaction_log(folder: str | Path, topics: Sequence[str] | None = None) -> pa.Table:
    """Every interaction the model servers logged in ``folder`` (all ``interactions-*``
    topics, or ``topics``), as an Arrow table of :data:`LOG_COLUMNS`; the JSON records are
    decoded in one vectorised pass."""
    import pyarrow as pa

    from headwater.brokers import EmbeddedBroker

    schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in LOG_COLUMNS])
    broker = EmbeddedBroker(Path(folder))
    values: list[pa.Array] = []
    try:
        for topic in topics if topics is not None else log_topics(folder):
            # a group that never commits reads from the start and leaves nothing behind
            with broker.consumer(topic, group=f"{LOG_TOPIC_PREFIX}reader") as consumer:
                while (batch := consumer.poll(timeout=0)).num_rows:
                    values.append(batch.column("value").combine_chunks())
    finally:
        broker.close()
    if not values:
        return schema.empty_table()
    import polars as pl

    kinds = {"string": pl.Utf8, "float64": pl.Float64}
    struct = pl.Struct({name: kinds[kind] for name, kind in LOG_COLUMNS})
    decoded = pl.from_arrow(pa.concat_arrays(values)).cast(pl.Utf8).str.json_decode(struct)
    return decoded.struct.unnest().to_arrow().cast(schema)


def load_interactions(source: str | Path | pd.DataFrame | pa.Table | Sequence[str | Path], *,
                      project: Project | None = None, columns: Mapping[str, str] | None = None,
                      weights: Mapping[str, float] | None = None,
                      use_values: bool = False) -> Interactions:
    """Interactions from a ``u.data`` file, a CSV/Parquet file, a warehouse table or query, or
    a pandas/Arrow table.

    Parameters
    ----------
    source:
        Path, table name, SELECT query, a folder of the model server's interaction logs, an
        in-memory frame/table, or a list of paths and tables read together.
    project:
        The project whose warehouse holds tables (and against which relative paths resolve).
    columns:
        Normal name -> column, where the common names do not match.
    weights:
        Event type -> weight, merged over :data:`EVENT_WEIGHTS`.
    use_values:
        Multiply each event's weight by its value (e.g. the rating).

    Raises :class:`~headwater.core.NotFoundError` for a missing file or table and
    :class:`~headwater.core.ConfigError` when no user or item column can be found.
    """
    options = {"weights": {**EVENT_WEIGHTS, **(weights or {})}, "use_values": use_values}
    if isinstance(source, Sequence) and not isinstance(source, str):
        if len(source) == 1:
            return load_interactions(source[0], project=project, columns=columns, **options)
        parts = [load_interactions(one, project=project, columns=columns) for one in source]
        if not parts:
            raise ConfigError("no interaction data given", hint="pass at least one source")
        frame = pd.concat([p.frame for p in parts], ignore_index=True)
        return Interactions(frame, source=" + ".join(p.source for p in parts), **options)
    if isinstance(source, pd.DataFrame):
        return Interactions.from_frame(source, columns=columns, **options)
    if not isinstance(source, str | Path):
        return Interactions.from_arrow(source, columns=columns, **options)
    text = str(source)
    path = project.path(text) if project is not None else Path(text).expanduser()
    if path.is_file() and _is_udata(path):
        return Interactions(read_udata(path), source=str(path), **options)
    if log_topics(path):
        return Interactions.from_arrow(read_interaction_log(path), source=str(path),
                                       columns=columns, **options)
    from headwater.ml._data import read_frame

    frame, where = read_frame(source, project=project)
    return Interactions.from_frame(frame, source=where, columns=columns, **options)
