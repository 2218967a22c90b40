"""Normalised readings (what the gateway publishes) from the simulator, for processor tests."""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from headwater.brokers import Broker
from headwater.stream.iot import simulate


def normalised(sim_messages: pl.DataFrame) -> pl.DataFrame:
    """Readings in one unit per metric, well-formed only, as the gateway would pass them."""
    m = sim_messages.filter(~pl.col("malformed"))
    value = pl.when(pl.col("unit") == "F").then((pl.col("value") - 32) * 5 / 9) \
        .when(pl.col("unit") == "kPa").then(pl.col("value") * 10).otherwise(pl.col("value"))
    return m.select("device", "gateway", "metric", value.alias("value"),
                    pl.col("event_time"), pl.col("send_time").alias("ingest_time"),
                    "message_id")


def publish_readings(broker: Broker, topic: str, readings: pl.DataFrame, *,
                     partitions: int = 2, chunk: int = 5_000) -> int:
    """Publish readings as JSON values keyed by device; returns how many."""
    broker.create_topic(topic, partitions=partitions)
    payload = readings.select(
        key=pl.col("device").cast(pl.Binary),
        value=pl.struct(pl.all()).struct.json_encode().cast(pl.Binary))
    for part in payload.iter_slices(chunk):
        broker.produce(topic, pa.table({"key": part["key"].to_arrow(),
                                        "value": part["value"].to_arrow()}))
    return readings.height


def sim_readings(devices: int = 12, seconds: float = 20, faults=("spike", "stuck", "duplicate",
                 "out_of_order", "late"), seed: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    sim = simulate(devices=devices, seconds=seconds, rate=2, faults=list(faults),
                   fault_share=0.2, seed=seed)
    return normalised(sim.messages), sim.truth
