"""Model server latency under load on loopback: headwater's server against a minimal raw ASGI
endpoint returning a precomputed list (the floor), same run, same uvicorn (uvloop, httptools).

    python benchmarks/serve_load.py [--seconds 5] [--rates 250,500,1000]

Recommendations: 90 % ``GET /recommendations/{user}?k=10``, 10 % ``POST /interactions``, at
fixed rates (open loop: requests leave on schedule whether or not earlier ones have returned,
latency counted from the scheduled time) and at the maximum rate (closed loop, 32 connections).
Then the same for ``POST /predict`` with one churn row. Target on 2 cores: p99 at most 10 ms at
1,000 requests/s with zero errors. The servers are pinned to CPU 0 and the load generator (a
separate process) to CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEY = "bench-key-0123456789"
HERE = Path(__file__).resolve()


# -- the floor: a raw ASGI app ------------------------------------------------------------------
def floor_app() -> object:
    """An ASGI app answering every request with one precomputed JSON list."""
    import orjson

    body = orjson.dumps({"user_id": "u1", "items": [{"item_id": f"i{n}", "score": 1.0 / n}
                                                    for n in range(1, 11)]})
    start = {"type": "http.response.start", "status": 200,
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}
    done = {"type": "http.response.body", "body": body}

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["method"] == "POST":
            more = True
            while more:
                more = (await receive()).get("more_body", False)
        await send(start)
        await send(done)

    return app


def run_floor(port: int) -> None:
    import uvicorn

    uvicorn.run(floor_app(), host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False)


# -- the load generator (a separate process) ----------------------------------------------------
async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _generate(port: int, requests: list[bytes], rate: float | None, seconds: float,
                    connections: int) -> dict[str, float]:
    """Open loop at ``rate`` (or closed loop when None) for ``seconds``: latency and errors."""
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    async def worker(closed: bool, stop_at: float) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = random.randrange(len(requests))
        while True:
            if closed:
                if time.perf_counter() >= stop_at:
                    break
                sent, request = time.perf_counter(), requests[i % len(requests)]
                i += 1
            else:
                item = await queue.get()
                if item is None:
                    break
                sent, request = item
            try:
                writer.write(request)
                status = await asyncio.wait_for(_read_response(reader), 5)
                if status != 200:
                    errors += 1
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            latencies.append(time.perf_counter() - sent)
        writer.close()

    start = time.perf_counter()
    if rate is None:
        await asyncio.gather(*(worker(True, start + seconds) for _ in range(connections)))
    else:
        tasks = [asyncio.create_task(worker(False, 0)) for _ in range(connections)]
        total = int(rate * seconds)
        for n in range(total):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((due, requests[n % len(requests)]))
        for _ in tasks:
            queue.put_nowait(None)
        await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    latencies.sort()
    n = len(latencies)
    return {"rps": n / elapsed, "p50": latencies[n // 2] * 1e3 if n else float("nan"),
            "p99": latencies[min(n - 1, int(n * 0.99))] * 1e3 if n else float("nan"),
            "errors": errors, "requests": n + errors}


def run_generator(args: argparse.Namespace) -> None:
    import uvloop

    requests = [bytes.fromhex(line) for line in Path(args.requests).read_text().split()]
    rate = None if args.rate == "max" else float(args.rate)
    out = uvloop.run(_generate(args.port, requests, rate, args.seconds,
                               32 if rate is None else 64))
    print(json.dumps(out))


def measure(port: int, requests: list[bytes], rate: str, seconds: float, folder: Path) -> dict:
    """Run the load generator in its own process on CPU 1."""
    path = folder / "requests.hex"
    path.write_text("\n".join(r.hex() for r in requests))
    done = subprocess.run(_pinned(1, [sys.executable, str(HERE), "--generate", "--port",
                                      str(port), "--requests", str(path), "--rate", rate,
                                      "--seconds", str(seconds)]),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"load generator failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- set-up: models in a throwaway registry ------------------------------------------------------
def prepare(root: Path) -> tuple[list[str], list[str], dict]:
    """Register a recommender (EASE on 60,000 synthetic events) and a churn model."""
    from headwater.config import load_project
    from headwater.ml import Setting, Tracker, get_algorithm, make_dataset
    from headwater.ml.datasets import make_churn, make_events
    from headwater.ml.recommend import Interactions, train_recommender

    tracker = Tracker.for_project(load_project(root))
    events = make_events(2000, 800, 60_000, seed=1)
    trained = train_recommender(Interactions.from_frame(events), models=["ease"], trials=1,
                                time_budget_s=20, tracker=tracker, alias="champion")
    ds = make_dataset(make_churn(2000, seed=2).frame, "Churn")
    model = get_algorithm("lightgbm").pipeline({}, Setting()).fit(ds.X, ds.y)
    with tracker.start_run("churn", run_name="bench"):
        uri = tracker.log_model(model, input_example=ds.X.head(5), predict_fn="predict_proba",
                                metadata={"threshold": 0.5, "target": "Churn",
                                          "columns": dict(model.named_steps["audit"].kinds_)})
    tracker.register(uri, "churn", alias="champion")
    row = json.loads(ds.X.head(1).to_json(orient="records"))[0]
    return trained.recommender.users, trained.recommender.items, row


def _pinned(cpu: int, command: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if _has_taskset() else command


def _has_taskset() -> bool:
    return subprocess.run(["which", "taskset"], capture_output=True).returncode == 0


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"no server on port {port} after {timeout} s")


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\nX-API-Key: {KEY}\r\n\r\n".encode()


def _post(path: str, body: object) -> bytes:
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\nX-API-Key: {KEY}\r\nContent-Type: "
            f"application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


def mix(users: list[str], items: list[str], n: int = 5000) -> list[bytes]:
    """90 % recommendations (5 % of them for new users), 10 % interactions."""
    rng = random.Random(0)
    out = []
    for i in range(n):
        user = rng.choice(users) if rng.random() > 0.05 else f"new-{i}"
        if rng.random() < 0.1:
            out.append(_post("/interactions", {"user_id": user, "item_id": rng.choice(items),
                                               "event": "click"}))
        else:
            out.append(_get(f"/recommendations/{user}?k=10"))
    return out


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(_pinned(0, command), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rates", default="250,500,1000")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--requests", help=argparse.SUPPRESS)
    parser.add_argument("--rate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        run_generator(args)
        return
    if args.floor:
        run_floor(args.floor)
        return
    root = Path(tempfile.mkdtemp(prefix="hw-serve-bench-"))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; server on CPU 0, load generator on CPU 1 "
          f"({'pinned' if _has_taskset() else 'NOT pinned: no taskset'}); "
          f"load average {os.getloadavg()[0]:.1f} (other work on the machine skews figures)")
    users, items, row = prepare(root)
    rates = [r for r in args.rates.split(",") if r] + ["max"]
    env = {**os.environ, "HEADWATER_API_KEY": KEY, "NO_COLOR": "1"}
    headwater = str(Path(sys.executable).with_name("headwater"))
    contenders = {}
    for name, command in (
            ("floor (raw ASGI)", [sys.executable, str(HERE), "--floor", "{port}"]),
            ("headwater recommendations", [headwater, "-p", str(root), "serve",
                                           "recommend@champion", "--port", "{port}",
                                           "--reload-every", "0"]),
            ("headwater /predict (1 churn row)", [headwater, "-p", str(root), "serve",
                                                  "churn@champion", "--port", "{port}",
                                                  "--reload-every", "0"])):
        port = _port()
        contenders[name] = (port, start([c.replace("{port}", str(port)) for c in command], env))
    try:
        for port, _ in contenders.values():
            _wait(port)
        workloads = {"floor (raw ASGI)": mix(users, items),
                     "headwater recommendations": mix(users, items),
                     "headwater /predict (1 churn row)": [_post("/predict", row)]}
        print(f"\n{'server':36} {'rate':>6} {'achieved/s':>11} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'errors':>7}")
        results: dict[tuple[str, str], dict] = {}
        for rate in rates:
            for name, (port, _) in contenders.items():
                out = measure(port, workloads[name], rate, args.seconds, root)
                results[name, rate] = out
                print(f"{name:36} {rate:>6} {out['rps']:>11,.0f} {out['p50']:>8.2f} "
                      f"{out['p99']:>8.2f} {out['errors']:>7}", flush=True)
        for rate in rates:
            floor, ours = results["floor (raw ASGI)", rate], results[
                "headwater recommendations", rate]
            print(f"at {rate}: recommendations p99 {ours['p99']:.2f} ms vs floor "
                  f"{floor['p99']:.2f} ms ({ours['p99'] / floor['p99']:.1f}x); "
                  f"throughput {ours['rps']:,.0f}/s vs {floor['rps']:,.0f}/s")
        at = results.get(("headwater recommendations", "1000"))
        if at is not None:
            verdict = "met" if at["p99"] <= 10 and at["errors"] == 0 else "NOT met"
            print(f"target p99 <= 10 ms at 1,000 requests/s with zero errors: {verdict}")
    finally:
        for _, proc in contenders.values():
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
