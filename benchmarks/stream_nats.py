"""Benchmark: headwater's NATS JetStream consumer against a bare nats-py pull consumer.

One topic of N small records (a ~100-byte value, a short key) on the NATS server on the machine,
in one or more partitions. Then, in rounds that alternate, on the same stream:

- **bare nats-py**: a durable pull consumer per partition (AckNone), ``fetch(batch)`` in a
  loop until every record arrived, doing nothing with the messages: the floor.
- **headwater**: ``NatsBroker.consumer(...).poll()`` until every record arrived, as Arrow
  tables (partition, offset, key, value, timestamp), committing after every poll (one
  AckAll acknowledgement per partition).

Each round uses a fresh consumer group. The best round of each is reported, with the ratio
(target: headwater at least 80 % of the bare consumer's records/s).

Run::

    .venv/bin/python benchmarks/stream_nats.py                      # 1,000,000 records
    .venv/bin/python benchmarks/stream_nats.py --records 200000 --partitions 2 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
import uuid

import numpy as np
import pyarrow as pa

from headwater.brokers._nats import NatsBroker


def make_records(n: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    values = pa.Array.from_buffers(pa.binary(), n, [
        None, pa.py_buffer(np.arange(0, n * 100 + 1, 100, dtype=np.int32)),
        pa.py_buffer(rng.integers(97, 123, n * 100, dtype=np.uint8))])
    keys = pa.array(np.char.add("dev-", rng.integers(0, 10_000, n).astype(str))).cast(
        pa.binary())
    return pa.table({"key": keys, "value": values})


def headwater_round(broker: NatsBroker, topic: str, total: int, batch: int) -> float:
    group = f"bench-hw-{uuid.uuid4().hex[:8]}"
    consumer = broker.consumer(topic, group=group)
    seen = 0
    start = time.perf_counter()
    while seen < total:
        got = consumer.poll(max_records=batch, timeout=5)
        if not got.num_rows:
            raise SystemExit(f"headwater: only {seen:,} of {total:,} records arrived")
        seen += got.num_rows
        last: dict[int, int] = {}
        for p, o in zip(got["partition"].to_numpy(), got["offset"].to_numpy(), strict=True):
            last[int(p)] = int(o)  # offsets grow within a partition: the last one wins
        consumer.commit(last)
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed


async def bare_round(url: str, stream: str, subjects: list[str], total: int,
                     batch: int) -> float:
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    nc = await nats.connect(url)
    js = nc.jetstream()
    group = f"bench-bare-{uuid.uuid4().hex[:8]}"
    subs = []
    for i, subject in enumerate(subjects):
        durable = f"{group}-{i}"
        await js.add_consumer(stream, ConsumerConfig(
            durable_name=durable, filter_subject=subject, ack_policy=AckPolicy.NONE,
            max_ack_pending=-1))
        subs.append(await js.pull_subscribe_bind(durable, stream))
    seen = 0
    start = time.perf_counter()

    async def drain(sub) -> int:
        count = 0
        while True:
            try:
                msgs = await sub.fetch(batch, timeout=1)
            except nats.errors.TimeoutError:
                return count
            count += len(msgs)

    while seen < total:
        counts = await asyncio.gather(*(drain(s) for s in subs))
        if not sum(counts):
            raise SystemExit(f"bare: only {seen:,} of {total:,} records arrived")
        seen += sum(counts)
    elapsed = time.perf_counter() - start - 1.0  # the last fetch of each waits out its timeout
    for i in range(len(subjects)):
        await js.delete_consumer(stream, f"{group}-{i}")
    await nc.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2000, help="records per fetch / poll")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default=os.environ.get("HW_BENCH_NATS",
                                                        "nats://127.0.0.1:4222"))
    args = parser.parse_args()

    broker = NatsBroker([args.url], stream_prefix="hwbench", fetch_batch=args.batch)
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, partitions=args.partitions)
    records = make_records(args.records)
    start = time.perf_counter()
    for first in range(0, args.records, 100_000):
        broker.produce(topic, records.slice(first, 100_000))
    produced = time.perf_counter() - start
    mb = (records["value"].nbytes + records["key"].nbytes) / 1e6
    print(f"{args.records:,} records ({mb:,.0f} MB of keys and values) in {args.partitions} "
          f"partition(s), produced in {produced:.1f} s ({args.records / produced:,.0f}/s); "
          f"python {platform.python_version()}, {os.cpu_count()} CPUs")

    stream = broker._stream(topic)
    subjects = [broker._subject(topic, p) for p in range(args.partitions)]
    hw_times, bare_times = [], []
    try:
        for r in range(args.rounds):
            bare_times.append(asyncio.run(bare_round(args.url, stream, subjects, args.records,
                                                     args.batch)))
            hw_times.append(headwater_round(broker, topic, args.records, args.batch))
            print(f"round {r + 1}: bare nats-py {args.records / bare_times[-1]:,.0f} records/s, "
                  f"headwater {args.records / hw_times[-1]:,.0f} records/s")
    finally:
        async def drop() -> None:
            await broker._js.delete_stream(stream)

        broker._run(drop, "delete the benchmark stream")
        broker.close()
    bare = args.records / min(bare_times)
    hw = args.records / min(hw_times)
    print(f"bare nats-py pull consumer (nothing done with the messages): {bare:,.0f} records/s")
    print(f"headwater NatsConsumer (Arrow tables, a commit per poll):     {hw:,.0f} records/s")
    print(f"ratio headwater / bare: {hw / bare:.2f} (target >= 0.80: "
          f"{'met' if hw / bare >= 0.8 else 'NOT met'})")


if __name__ == "__main__":
    main()
