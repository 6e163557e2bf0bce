"""Background jobs on huey: document requests, extracts, notifications.

One queue, ``queue``, declared at import so that tasks can be decorated at import time;
:func:`configure` points it at its storage before anything is enqueued:

* embedded (the default): huey's SQLite storage in the data directory, and a consumer
  running in threads inside the web process (``medcard serve``), so a clinic or a demo
  needs nothing else;
* production: ``MEDCARD_REDIS_URL`` set → Redis storage, consumers run by ``medcard worker``
  (``MEDCARD_JOBS_MODE=external`` keeps the web process from consuming);
* ``MEDCARD_JOBS_MODE=immediate`` runs each job inline when it is enqueued (unit tests).

Jobs reach the store through :func:`runtime`, which holds the engine and settings the
process was configured with.  A job's visible state lives in the FHIR resource it works
for (a ``Task``'s status, a ``DocumentReference``'s docStatus), written by the job itself;
:func:`job` adds retries and a final-failure hook, so a job that keeps failing ends
"failed, with a reason" instead of staying "in progress" forever.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.api import Task, TaskWrapper
from huey.consumer import Consumer
from huey.signals import SIGNAL_ERROR
from sqlalchemy import Engine

from medcard.config import Settings

log = logging.getLogger("medcard.jobs")

# Replaced by configure(); immediate mode keeps an unconfigured process (an import in a
# script, a test that forgot) from writing a queue file anywhere.
queue: Huey = MemoryHuey("medcard", immediate=True, results=False)

_FAILURE_HOOKS: dict[str, Callable[[dict[str, Any], str], None]] = {}


@dataclass
class Runtime:
    settings: Settings
    engine: Engine


class _EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """huey's consumer without signal handlers.  ``Consumer.start()`` installs them
    unconditionally, which fails outside the main thread (a server in a thread) and in the
    main thread would take SIGTERM/SIGINT away from uvicorn, which owns them."""

    def _set_signal_handlers(self) -> None:
        return


class _State:
    runtime: Runtime | None = None
    consumer: Consumer | None = None
    consumer_users = 0  # web apps (lifespans) sharing the embedded consumer
    lock = threading.Lock()


_state = _State()


class NotConfiguredError(RuntimeError):
    pass


def runtime() -> Runtime:
    if _state.runtime is None:
        raise NotConfiguredError("medcard.jobs.configure(settings, engine) was not called")
    return _state.runtime


def _storage_for(settings: Settings) -> Huey:
    if settings.jobs_mode == "immediate":
        return MemoryHuey("medcard", immediate=True, results=False)
    if settings.redis_url:
        return RedisHuey("medcard", url=settings.redis_url, results=False)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("medcard", filename=str(settings.data_dir / "jobs.sqlite3"), results=False)


def configure(settings: Settings, engine: Engine) -> None:
    """Bind the queue to this process's storage, engine and settings."""
    configured = _storage_for(settings)
    queue.immediate = configured.immediate
    if not configured.immediate:
        queue.storage = configured.storage
    _state.runtime = Runtime(settings, engine)


def start_embedded_consumer(settings: Settings) -> Consumer | None:
    """Consume in threads inside this process (embedded mode); None when jobs run elsewhere."""
    if settings.jobs_mode != "embedded" or queue.immediate:
        return None
    from medcard.jobs import registry  # every job and periodic task, before consuming

    registry.load_all()
    with _state.lock:
        _state.consumer_users += 1
        if _state.consumer is None:
            _state.consumer = _EmbeddedConsumer(
                queue,
                workers=settings.jobs_workers,
                worker_type="thread",
                periodic=True,
                initial_delay=0.05,
                max_delay=1.0,
                check_worker_health=False,
            )
            _state.consumer.start()
        return _state.consumer


def stop_embedded_consumer() -> None:
    with _state.lock:
        _state.consumer_users = max(0, _state.consumer_users - 1)
        if _state.consumer is not None and _state.consumer_users == 0:
            _state.consumer.stop(graceful=True)
            _state.consumer = None


def run_worker(workers: int) -> None:
    """``medcard worker``: a dedicated consumer process (production, Redis)."""
    queue.create_consumer(workers=workers, worker_type="thread", periodic=True).run()


def job(
    *, retries: int = 2, retry_delay: int = 5, on_failure: Callable[[dict[str, Any], str], None]
) -> Callable[[Callable[..., None]], TaskWrapper]:
    """A huey task taking keyword arguments only, retried ``retries`` times; when the last
    attempt fails, ``on_failure(kwargs, reason)`` records the failure where the user sees it."""

    def decorate(fn: Callable[..., None]) -> TaskWrapper:
        task = queue.task(retries=retries, retry_delay=retry_delay, name=fn.__name__)
        wrapper: TaskWrapper = task(fn)
        _FAILURE_HOOKS[wrapper.name] = on_failure
        return wrapper

    return decorate


@queue.signal(SIGNAL_ERROR)  # type: ignore[untyped-decorator]
def _on_error(signal: str, task: Task, exc: BaseException | None = None) -> None:
    if task.retries and not queue.immediate:  # huey will run it again (after retry_delay)
        log.warning("job %s failed, %d retries left: %s", task.name, task.retries, exc)
        return
    hook = _FAILURE_HOOKS.get(task.name)
    log.error("job %s failed for good: %s", task.name, exc)
    if hook is not None:
        try:
            hook(dict(task.kwargs or {}), _reason(exc))
        except Exception:
            log.exception("job %s: recording the failure failed", task.name)


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc).strip() or type(exc).__name__
    return text[:300]
