"""Alerts for a project: its store, what its rules see, evaluation after a run, the watcher.

Every evaluator (a batch run when it ends, a long-running process, ``headwater alerts watch``)
first writes its own metrics to the project's textfile folder and then judges the rules on all
the textfiles there, so each sees the same picture and none resolves what another fired.
"""

from __future__ import annotations

import atexit
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from headwater.core import ConfigError
from headwater.monitor._logging import get_logger
from headwater.monitor._metrics import ERRORS, write_metrics
from headwater.monitor.alerts._delivery import Dispatcher, deliver_due
from headwater.monitor.alerts._engine import Evaluation, evaluate, notification
from headwater.monitor.alerts._rules import Observation, duration_s
from headwater.monitor.alerts._samples import Sample, registry_samples, textfile_samples
from headwater.monitor.alerts._sinks import send
from headwater.monitor.alerts._store import AlertStore, Silence

if TYPE_CHECKING:
    from collections.abc import Iterator

    from headwater.config import Project
    from headwater.monitor._serve import MetricsServer

log = get_logger(__name__)

#: Recent run records, newest first (``RunStore.list`` output); default: the project's.
RunsFn = Callable[[], list[dict[str, Any]]]

_dispatchers: dict[str, Dispatcher] = {}
_lock = threading.Lock()


def alert_store(project: Project) -> AlertStore:
    """The project's alert store: in the metadata database (``metadata.url``, or SQLite
    under ``.headwater/``)."""
    if project.metadata.url is not None:
        return AlertStore(project.metadata.url.get_secret_value())
    return AlertStore.at(project.state_dir)


def observe(project: Project, store: AlertStore, *, job: str | None = None,
            runs: RunsFn | None = None, now: float | None = None) -> Observation:
    """What the rules see now: every metrics textfile of the project (this process's own
    written first, as ``job``), recent runs, and the metric history (which this adds to)."""
    now = time.time() if now is None else now
    folder = project.path(project.metrics.textfile_dir) if project.metrics.textfile_dir else None
    samples: list[Sample]
    if folder is not None:
        if job:
            write_metrics(folder, job)
        samples = textfile_samples(folder)
    else:
        samples = registry_samples()
    store.record_samples([s for s in samples if s.name.startswith("headwater_")], now)
    if runs is None:
        from headwater.store import run_store

        recent = run_store(project)
        runs = lambda: recent.list(limit=500)  # noqa: E731
    return Observation(now=now, samples=samples, runs=runs(),
                       pipelines=sorted(project.pipelines), history=store.samples_before)


def check_rules(project: Project, *, job: str | None = None, runs: RunsFn | None = None,
                wait_s: float = 2.0) -> Evaluation | None:
    """Evaluate the project's rules once (after a batch run) and start delivering.

    Never raises: an alerting problem is logged and counted, and the pipeline goes on.
    Delivery runs on a thread; at exit the process waits at most ``wait_s`` for it, and what
    is left is sent by the next evaluation or by ``headwater alerts watch``.
    """
    spec = project.alerts
    if not spec.rules:
        return None
    try:
        store = alert_store(project)
        result = evaluate(spec, store, observe(project, store, job=job, runs=runs),
                          project=project.project)
        if result.notifications or store.next_attempt() is not None:
            _dispatcher(project, store, wait_s).kick()
        return result
    except Exception as exc:  # alerting must never fail the pipeline it watches
        ERRORS.labels("alerts", type(exc).__name__).inc()
        log.warning("alert_evaluation_failed", error=f"{type(exc).__name__}: {exc}")
        return None


def _dispatcher(project: Project, store: AlertStore, wait_s: float) -> Dispatcher:
    key = store.url
    with _lock:
        if key not in _dispatchers:
            dispatcher = Dispatcher(project.alerts, store).start()
            _dispatchers[key] = dispatcher
            atexit.register(dispatcher.close, wait_s)
        return _dispatchers[key]


class Watcher:
    """Evaluates the rules every ``alerts.evaluate_every`` and delivers, on its own threads:
    what long-running processes and ``headwater alerts watch`` run.

    Parameters
    ----------
    project:
        The loaded headwater.yaml.
    job:
        This process's name in the metrics textfile folder (e.g. ``stream-sensors``).
    runs:
        Recent run records, for stale and run_failed rules.
    interval_s:
        Override ``alerts.evaluate_every``.
    """

    def __init__(self, project: Project, *, job: str | None = None, runs: RunsFn | None = None,
                 interval_s: float | None = None) -> None:
        self.project = project
        self.job = job
        self.runs = runs
        self.interval_s = interval_s or duration_s(project.alerts.evaluate_every)
        self.evaluations = 0
        self.last: Evaluation | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store: AlertStore | None = None
        self._dispatcher: Dispatcher | None = None

    def evaluate_once(self) -> Evaluation:
        """One evaluation now (also prunes history past ``alerts.history``)."""
        store = self._store or alert_store(self.project)
        self._store = store
        obs = observe(self.project, store, job=self.job, runs=self.runs)
        self.last = evaluate(self.project.alerts, store, obs, project=self.project.project)
        self.evaluations += 1
        if self.evaluations % 100 == 1:
            store.prune(obs.now - duration_s(self.project.alerts.history))
        if self._dispatcher is not None:
            self._dispatcher.kick()
        return self.last

    def start(self) -> Watcher:
        """Evaluate in the background until :meth:`stop`."""
        self._store = self._store or alert_store(self.project)
        self._dispatcher = Dispatcher(self.project.alerts, self._store).start()
        self._thread = threading.Thread(target=self._loop, name="hw-alert-rules", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop evaluating; give delivery up to ``timeout`` seconds to send what is due."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 5)
        if self._dispatcher is not None:
            self._dispatcher.close(timeout)

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stopped; True when stopped."""
        return self._stop.wait(seconds)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.evaluate_once()
            except Exception as exc:  # keep watching; the next round may succeed
                ERRORS.labels("alerts", type(exc).__name__).inc()
                log.warning("alert_evaluation_failed", error=f"{type(exc).__name__}: {exc}")
            self._stop.wait(self.interval_s)


@dataclass
class Monitoring:
    """What :func:`monitoring` runs: the ``/metrics`` server and the rule watcher (each None
    when not asked for)."""

    metrics: MetricsServer | None
    watcher: Watcher | None


@contextmanager
def monitoring(project: Project, *, job: str, metrics_port: int | None = None,
               metrics_host: str = "127.0.0.1", runs: RunsFn | None = None,
               alerts: bool = True, interval_s: float | None = None) -> Iterator[Monitoring]:
    """What every long-running process (stream processor, gateway, scheduler, followed
    pipeline, ``headwater alerts watch``) does while it runs: serve ``/metrics`` on
    ``metrics_port`` (if given; see :func:`headwater.monitor.serve_metrics`) and evaluate the
    alert rules every ``interval_s`` (default ``alerts.evaluate_every``) if the project has
    any and ``alerts`` is true.

    >>> # with monitoring(project, job="stream-sensors", metrics_port=9108) as m:
    >>> #     print(m.metrics.url); run_forever()
    """
    from headwater.monitor._serve import serve_metrics

    server = serve_metrics(metrics_port, host=metrics_host) if metrics_port is not None else None
    try:
        watcher = Watcher(project, job=job, runs=runs, interval_s=interval_s).start() \
            if alerts and project.alerts.rules else None
    except BaseException:
        if server is not None:
            server.close()
        raise
    try:
        yield Monitoring(server, watcher)
    finally:
        if watcher is not None:
            watcher.stop()
        if server is not None:
            server.close()


def silence(store: AlertStore, matchers: dict[str, str], *, duration: str | None = None,
            until: float | None = None, comment: str | None = None,
            created_by: str | None = None, now: float | None = None) -> Silence:
    """Silence alerts whose labels match ``matchers`` (globs) for ``duration`` (``2h``) or
    until a Unix time. Returns the silence, whose id ``unsilence`` takes."""
    if not matchers:
        raise ConfigError("a silence needs at least one label matcher",
                          hint="e.g. rule=orders_failed or pipeline='orders*'")
    now = time.time() if now is None else now
    if until is None:
        if duration is None:
            raise ConfigError("a silence needs an expiry", hint="give --for 2h or --until TIME")
        try:
            until = now + duration_s(duration)
        except ValueError as exc:
            raise ConfigError(str(exc), hint="e.g. --for 30m") from None
    if until <= now:
        raise ConfigError("the silence would already be over", hint="give a time in the future")
    return store.add_silence(Silence(id=secrets.token_hex(6), matchers=dict(matchers),
                                     starts_at=now, ends_at=until, comment=comment,
                                     created_by=created_by))


def unsilence(store: AlertStore, silence_id: str, *, now: float | None = None) -> Silence:
    """End a silence now; alerts it held back are sent at the next evaluation."""
    return store.end_silence(silence_id, now)


def active_alerts(store: AlertStore) -> list[dict[str, Any]]:
    """Alerts firing now (rule and stream alerts), newest first."""
    return store.active_alerts()


def alert_history(store: AlertStore, since: Any = None, *, limit: int = 200
                  ) -> list[dict[str, Any]]:
    """Alert events (firing, resolved) since a time, newest first."""
    return store.alert_history(since, limit=limit)


def send_test(project: Project, sink: str | None = None) -> dict[str, str | None]:
    """Send a test notification to one sink (or every sink) now, synchronously.

    Returns ``{sink: None}`` for each delivered and ``{sink: error}`` for each that failed.
    """
    spec = project.alerts
    names = [sink] if sink else sorted(spec.sinks)
    for name in names:
        if name not in spec.sinks:
            raise ConfigError(f"no sink '{name}' under alerts.sinks "
                              f"(sinks: {', '.join(sorted(spec.sinks))})",
                              hint="check the spelling or add it to headwater.yaml")
    now = time.time()
    alert = {"fingerprint": "test-" + secrets.token_hex(4), "rule": "headwater_test",
             "severity": "info", "labels": {"rule": "headwater_test", "severity": "info"},
             "value": None, "summary": "a test notification from `headwater alerts test`",
             "fired_at": now}
    note = notification(project.project, "firing", {"rule": "headwater_test"}, [alert])
    out: dict[str, str | None] = {}
    for name in names:
        try:
            send(name, spec.sinks[name], note)
            out[name] = None
        except Exception as exc:
            out[name] = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
    return out


def deliver_pending(project: Project) -> int:
    """Send every notification that is due now (synchronously); return how many went out."""
    return deliver_due(project.alerts, alert_store(project))


class AlertHandOff:
    """Takes alerts raised inside a pipeline (the stream processor's detectors) into the
    project's alert state and sinks on a thread of its own, so the pipeline never waits on
    the database or a sink. Call :meth:`submit` from the pipeline, :meth:`close` at the end.
    """

    def __init__(self, project: Project) -> None:
        import queue

        self.project = project
        self._queue: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()
        self._store = alert_store(project)
        self._dispatcher = Dispatcher(project.alerts, self._store)
        self._thread = threading.Thread(target=self._loop, name="hw-alert-handoff", daemon=True)
        self._started = False

    def submit(self, changes: list[dict[str, Any]]) -> None:
        """Queue alert changes (see :func:`record_alerts` for their shape); returns at once."""
        if not changes:
            return
        if not self._started:
            self._started = True
            self._dispatcher.start()
            self._thread.start()
        self._queue.put(changes)

    def close(self, timeout: float = 2.0) -> None:
        """Record what is queued and give delivery up to ``timeout`` seconds."""
        if not self._started:
            return
        self._queue.put(None)
        self._thread.join(timeout=timeout + 5)
        self._dispatcher.close(timeout)

    def _loop(self) -> None:
        from headwater.monitor.alerts._engine import record_alerts

        while (changes := self._queue.get()) is not None:
            try:
                if record_alerts(self.project.alerts, self._store, changes, now=time.time(),
                                 project=self.project.project):
                    self._dispatcher.kick()
            except Exception as exc:  # never the pipeline's problem
                ERRORS.labels("alerts", type(exc).__name__).inc()
                log.warning("alert_handoff_failed", error=f"{type(exc).__name__}: {exc}")
