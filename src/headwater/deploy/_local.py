"""The local deploy target: every model version a real process on this machine, behind a router
process that shifts traffic between them by weight, so every strategy runs for real here.

    target = LocalTarget("local", spec, health, root=project.root, state=project.state_dir /
                         "deploy" / "local")
    target.preflight()           # the router runs (started if not), dead versions restarted

A version's process is the model server (``runtime: server``) or its bundle (``runtime:
bundle``, as ``headwater package --run`` starts it), on a free loopback port; it is staged with
no traffic and given a share only once ``/readyz`` answers. Health comes from each version's
own ``/metrics`` (5xx share, p99 latency over the bake). A retired version first leaves the
router's table (the router drains its requests in flight), then its process stops. Processes
and the router run in their own sessions: a killed deploy command leaves them serving, and
``state.json`` (versions, ports, pids) plus the router's ``routes.json`` let the next run
resume or roll back.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.core import ConfigError, duration_ms
from headwater.deploy._rollout import DeployError, Health, Variant
from headwater.deploy._router import ADMIN, write_json

if TYPE_CHECKING:
    from headwater.config._deploy import HealthSpec, LocalTargetSpec

#: Routes that are the server's own operations, not traffic (left out of health).
_OPERATIONS = frozenset({"/metrics", "/readyz", "/healthz", "/ping", "/", "unmatched"})
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split(") ", 1)[-1][:1] != "Z"


def scrape(text: str) -> dict[str, Any]:
    """Traffic counters from a model server's ``/metrics``: requests, 5xx, latency buckets.

    >>> m = scrape('headwater_serve_requests_total{route="/predict",model="m",version="1",'
    ...            'variant="a",status="500"} 2.0\\n')
    >>> m["requests"], m["errors"]
    (2.0, 2.0)
    """
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, Any] = {"requests": 0.0, "errors": 0.0, "buckets": {}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("route") in _OPERATIONS:
                continue
            if sample.name == "headwater_serve_requests_total":
                out["requests"] += sample.value
                if sample.labels["status"].startswith("5"):
                    out["errors"] += sample.value
            elif sample.name == "headwater_serve_request_seconds_bucket":
                le = float(sample.labels["le"])
                out["buckets"][le] = out["buckets"].get(le, 0.0) + sample.value
    return out


def quantile(buckets: dict[float, float], q: float) -> float | None:
    """The ``q`` quantile of a cumulative histogram, interpolated in its bucket (as
    Prometheus' ``histogram_quantile``); None without observations.

    >>> quantile({0.01: 50.0, 0.1: 100.0, float("inf"): 100.0}, 0.99)
    0.0982
    """
    edges = sorted(buckets)
    total = buckets[edges[-1]] if edges else 0.0
    if total <= 0:
        return None
    rank, below, lower = q * total, 0.0, 0.0
    for edge in edges:
        count = buckets[edge]
        if count >= rank:
            if edge == float("inf"):
                return lower
            return round(lower + (edge - lower) * (rank - below) / max(count - below, 1e-12), 6)
        below, lower = count, edge
    return lower


class LocalTarget:
    """Model versions as local processes behind a weighted router (see the module)."""

    def __init__(self, name: str, spec: LocalTargetSpec, health: HealthSpec, *, root: Path,
                 state: Path) -> None:
        self.name, self.spec, self.health_spec = name, spec, health
        self.root, self.state = root, state
        self.url = f"http://{spec.host}:{spec.port}"
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._baselines: dict[tuple[str, datetime], dict[str, Any]] = {}
        self._lock: Any = None

    # -- state on disk ---------------------------------------------------------------------------
    def _read(self, file: str, default: Any) -> Any:
        path = self.state / file
        return json.loads(path.read_text()) if path.exists() else default

    def _processes(self) -> dict[str, dict[str, Any]]:
        return self._read("state.json", {"variants": {}})["variants"]

    def _save_processes(self, variants: dict[str, dict[str, Any]]) -> None:
        write_json(self.state / "state.json", {"variants": variants})

    def _client(self) -> Any:
        import httpx

        key = {"x-api-key": self.spec.api_key} if self.spec.api_key else {}
        return httpx.Client(timeout=10.0, headers=key)

    # -- the router ------------------------------------------------------------------------------
    def _admin(self, method: str, routes: dict[str, Any] | None = None) -> dict[str, Any]:
        import httpx

        config = self._read("router.json", {})
        base = f"http://127.0.0.1:{self.spec.port}" if self.spec.host in ("0.0.0.0", "::") \
            else self.url
        answer = httpx.request(method, base + ADMIN + "routes", json=routes,
                               headers={"x-router-token": config.get("token", "")},
                               timeout=duration_ms(self.spec.drain) / 1000 + 10)
        if answer.status_code != 200:
            raise DeployError(f"target '{self.name}': the router on {self.url} refused "
                              f"({answer.status_code}): {answer.text[:200]}",
                              hint=f"is another program on port {self.spec.port}? change "
                              f"deploy.targets.{self.name}.port")
        result: dict[str, Any] = answer.json()
        return result

    def routes(self) -> dict[str, Any]:
        """The router's table now: each version's port, weight, requests in flight."""
        return self._admin("GET")

    def _router_up(self) -> bool:
        import httpx

        try:
            self.routes()
        except (httpx.HTTPError, DeployError):
            return False
        return True

    def _start_router(self) -> None:
        config = self._read("router.json", {})
        if _alive(config.get("pid")) and self._router_up():
            return
        with socket.socket() as sock:
            try:
                sock.bind((self.spec.host, self.spec.port))
            except OSError as exc:
                raise ConfigError(f"deploy target '{self.name}': port {self.spec.port} on "
                                  f"{self.spec.host} is taken ({exc.strerror})",
                                  hint=f"stop what uses it or change deploy.targets."
                                  f"{self.name}.port") from None
        config = {"host": self.spec.host, "port": self.spec.port,
                  "token": config.get("token") or secrets.token_urlsafe(24),
                  "drain_s": duration_ms(self.spec.drain) / 1000}
        path = self.state / "router.json"
        write_json(path, config)
        path.chmod(0o600)
        log = (self.state / "router.log").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", "headwater.deploy._router",
                                 str(self.state)], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self._procs[proc.pid] = proc
        write_json(path, {**config, "pid": proc.pid})
        deadline = time.monotonic() + 30
        while not self._router_up():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.state / "router.log").read_text(errors="replace")[-400:]
                raise DeployError(f"target '{self.name}': the router did not start: {tail}",
                                  hint=f"see {self.state / 'router.log'}")
            time.sleep(0.05)

    # -- checks and recovery before a rollout ----------------------------------------------------
    def preflight(self, *, lock: bool = True) -> None:
        """One deploy command per target at a time; the router runs; a version whose process
        died (a reboot) is started again on its port."""
        if self.spec.host not in _LOOPBACK and not self.spec.api_key:
            raise ConfigError(f"deploy target '{self.name}' listens on {self.spec.host} with no "
                              "API key", hint=f"set deploy.targets.{self.name}.api_key: "
                              "${HEADWATER_API_KEY}, or host: 127.0.0.1")
        self.state.mkdir(parents=True, exist_ok=True)
        if lock:
            self._lock = (self.state / "deploy.lock").open("w")
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DeployError(f"another deploy command is working on target '{self.name}'",
                                  hint="wait for it to finish (`headwater deploy history`)"
                                  ) from None
        self._start_router()
        variants = self._processes()
        for name, v in variants.items():
            if not _alive(v.get("pid")):
                v["pid"] = self._spawn(name, Path(v["model"]), v["port"])
                self._save_processes(variants)
                self._wait_ready(name, v["port"], v["pid"])

    # -- version processes -------------------------------------------------------------------------
    def _command(self, model: Path, port: int) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ)
        if self.spec.api_key:
            env["HEADWATER_API_KEY"] = self.spec.api_key
        if self.spec.runtime == "bundle":
            from headwater.deploy._bundle import bundle_env

            return [str(model / "serve"), "serve"], {**env, **bundle_env(model, port=port)}
        auth = "--auth" if self.spec.api_key else "--no-auth"
        return ([sys.executable, "-m", "headwater", "-p", str(self.root), "serve",
                 f"file://{model}", "--host", "127.0.0.1", "--port", str(port), auth,
                 "--reload-every", "0", "--sagemaker", "--azureml"], env)

    def _spawn(self, name: str, model: Path, port: int) -> int:
        cmd, env = self._command(model, port)
        log = (self.state / f"{name}.log").open("ab")
        proc = subprocess.Popen(cmd, cwd=self.state, env=env, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self._procs[proc.pid] = proc
        return proc.pid

    def _wait_ready(self, name: str, port: int, pid: int) -> None:
        import httpx

        deadline = time.monotonic() + duration_ms(self.spec.ready_timeout) / 1000
        with self._client() as http:
            while True:
                if not _alive(pid):
                    tail = (self.state / f"{name}.log").read_text(errors="replace")[-600:]
                    raise DeployError(f"target '{self.name}': {name}'s process exited before "
                                      f"it was ready: {tail.strip()}",
                                      hint=f"see {self.state / (name + '.log')}")
                try:
                    if http.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise DeployError(f"target '{self.name}': {name} was not ready within "
                                      f"{self.spec.ready_timeout}",
                                      hint=f"raise deploy.targets.{self.name}.ready_timeout")
                time.sleep(0.1)

    def _stop(self, pid: int | None) -> None:
        if not _alive(pid):
            return
        assert pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            proc = self._procs.get(pid)
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.1)
            else:
                time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if pid in self._procs:
            self._procs.pop(pid).wait()

    def _put(self, weights: dict[str, float], mirror: dict[str, Any] | None = None) -> None:
        """Route exactly the versions in ``weights``; a mirror stays while its version is
        staged (weight 0)."""
        procs = self._processes()
        if mirror is None:
            mirror = self.routes().get("mirror")
        if mirror and weights.get(mirror["variant"], 1.0) != 0.0:
            mirror = None
        self._admin("PUT", {"variants": {n: {"port": procs[n]["port"], "weight": w}
                                         for n, w in weights.items() if n in procs},
                            "mirror": mirror})

    def mirror(self, shares: dict[str, float]) -> None:
        """Copy these shares of the live requests to staged versions (answers discarded)."""
        table = self.routes()["variants"]
        chosen = next(({"variant": n, "share": w} for n, w in shares.items() if w > 0), None)
        self._put({n: v["weight"] for n, v in table.items()}, chosen or {})

    # -- Target ----------------------------------------------------------------------------------
    def variants(self) -> list[Variant]:
        """The versions with a process, and their shares of the router's traffic."""
        procs = self._processes()
        if not procs:
            return []
        table = self.routes()["variants"]
        weights = {n: table.get(n, {}).get("weight", 0.0) for n in procs}
        total = sum(weights.values()) or 1.0
        return [Variant(n, int(v["version"]), weights[n] / total) for n, v in procs.items()]

    def stage(self, version: int, model_uri: str) -> str:
        """Start ``version``'s process with no traffic (all of it when it is the first) and
        wait until it is ready."""
        name = f"v{version}"
        procs = self._processes()
        if name in procs:  # left behind: start it afresh
            self.retire(name)
            procs = self._processes()
        folder = self.state / "models" / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        if self.spec.runtime == "bundle":
            from headwater.deploy._bundle import bundle_model

            folder = bundle_model(Path(model_uri), self.name, version, folder.parent).path
        else:
            shutil.copytree(model_uri, folder)
        port = _free_port()
        procs[name] = {"version": version, "port": port, "model": str(folder), "pid": None}
        self._save_processes(procs)
        procs[name]["pid"] = pid = self._spawn(name, folder, port)
        self._save_processes(procs)
        try:
            self._wait_ready(name, port, pid)
        except Exception:
            self._stop(pid)
            procs.pop(name)
            self._save_processes(procs)
            raise
        current = {v.name: v.weight for v in self.variants() if v.name != name}
        self._put({**current, name: 0.0 if current else 1.0})
        return name

    def shift(self, weights: dict[str, float]) -> None:
        """Give the named versions these shares in the router (others keep theirs)."""
        table = self.routes()["variants"]
        self._put({**{n: v["weight"] for n, v in table.items()}, **weights})

    def smoke(self, variant: str) -> list[str]:
        """POST the model's input example straight to ``variant``; a non-200 is a problem."""
        import httpx

        v = self._processes()[variant]
        folder = Path(v["model"])
        example = next((p for p in (folder / "input_example.json",
                                    folder / "model" / "input_example.json") if p.exists()), None)
        url = f"http://127.0.0.1:{v['port']}"
        with self._client() as http:
            try:
                if example is None:
                    answer = http.get(url + "/readyz")
                else:
                    body = b'{"dataframe_split": ' + example.read_bytes() + b"}"
                    answer = http.post(url + "/invocations", content=body,
                                       headers={"content-type": "application/json"})
            except httpx.HTTPError as exc:
                return [f"smoke request to {variant} failed: {exc}"]
        if answer.status_code != 200:
            return [f"smoke request to {variant} answered {answer.status_code}: "
                    f"{answer.text[:200]}"]
        return []

    def _metrics(self, variant: str) -> dict[str, Any] | None:
        import httpx

        port = self._processes()[variant]["port"]
        try:
            with self._client() as http:
                answer = http.get(f"http://127.0.0.1:{port}/metrics")
        except httpx.HTTPError:
            return None
        return scrape(answer.text) if answer.status_code == 200 else None

    def health(self, variant: str, since: datetime) -> Health:
        """Error rate and p99 from ``variant``'s ``/metrics`` since the first look at ``since``."""
        now = self._metrics(variant)
        if now is None:
            return Health(alarms=[f"{variant} does not answer /metrics"])
        base = self._baselines.setdefault((variant, since), now)
        requests = now["requests"] - base["requests"]
        errors = now["errors"] - base["errors"]
        buckets = {le: c - base["buckets"].get(le, 0.0) for le, c in now["buckets"].items()}
        p99 = quantile(buckets, 0.99)
        return Health(requests=int(requests), error_rate=errors / requests if requests else None,
                      p99_ms=p99 * 1000 if p99 is not None else None)

    def retire(self, variant: str) -> None:
        """Take ``variant`` out of the router (its requests in flight drain), then stop it."""
        v = self._processes().get(variant)
        if v is None:
            return
        table = self.routes()["variants"]
        self._put({n: w["weight"] for n, w in table.items() if n != variant})
        self._stop(v.get("pid"))
        procs = self._processes()
        procs.pop(variant, None)
        self._save_processes(procs)
        self._baselines = {k: b for k, b in self._baselines.items() if k[0] != variant}
        shutil.rmtree(v["model"], ignore_errors=True)

    def stop(self) -> None:
        """Stop every version and the router (``headwater deploy stop``); the target is empty."""
        for v in self._processes().values():
            self._stop(v.get("pid"))
        self._save_processes({})
        with contextlib.suppress(FileNotFoundError):
            (self.state / "routes.json").unlink()
        self._stop(self._read("router.json", {}).get("pid"))
