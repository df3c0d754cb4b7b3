"""Where episodes run (the one executor, for evaluation and training collection alike): this
process, a local process pool, or Ray. Results stream back as they finish (in any order);
every backend gives the same result for the same task.

    local, workers=1   in this process (needed for the GUI, and easy to debug)
    local, workers>1   a pool of worker processes, each with its own PyBullet DIRECT client
    ray                Ray tasks on a local Ray started on demand, or on `ray_address`

    run_tasks(tasks, backend, workers, ray_address)        one list of tasks
    with Executor(backend, workers, ray_address) as ex:    several lists on the same workers
        for result in ex.run(tasks): ...
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
import multiprocessing
from typing import Iterator, Optional, Sequence

from navctl.episode import EpisodeResult, Runner, Task, run_in_worker
from navctl.errors import UsageError

BACKENDS = ("local", "ray")
# Worker processes run one thread each: the pool already fills the cores.
_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


class Executor:
    """Runs lists of tasks on one backend, keeping its workers from one list to the next (a
    training run sends one list per round).

    `workers` defaults to os.cpu_count(); `render_mode` needs the in-process backend
    (local with one worker); `ray_address` is HOST:PORT of a Ray cluster (default: a local
    Ray started for the life of the executor). Closing a run's iterator early cancels what
    has not started.
    """

    def __init__(self, backend: str = "local", workers: Optional[int] = None, ray_address: Optional[str] = None,
                 render_mode: Optional[str] = None) -> None:
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend {backend!r} (valid: {', '.join(BACKENDS)})")
        self.backend, self.workers, self.ray_address = backend, workers or os.cpu_count() or 1, ray_address
        if render_mode is not None and (backend != "local" or self.workers != 1):
            raise ValueError("rendering needs the local backend with one worker")
        self.render_mode = render_mode
        self._runner: Optional[Runner] = None
        self._pool: Optional[ProcessPoolExecutor] = None
        self._ray: Optional[tuple] = None  # (ray module, remote episode function, whether Ray was started here)

    def run(self, tasks: Sequence[Task]) -> Iterator[EpisodeResult]:
        """Runs every task, yielding results as episodes finish."""
        if not tasks:
            return iter(())
        if self.backend == "ray":
            return self._run_ray(tasks)
        if self.workers == 1 or (len(tasks) == 1 and self._pool is None):
            return self._run_here(tasks)
        return self._run_pool(tasks)

    def _run_here(self, tasks: Sequence[Task]) -> Iterator[EpisodeResult]:
        if self._runner is None:
            self._runner = Runner(self.render_mode)
        for task in tasks:
            yield self._runner.run(task)

    def _run_pool(self, tasks: Sequence[Task]) -> Iterator[EpisodeResult]:
        if self._pool is None:
            self._pool = _start_pool(min(self.workers, len(tasks)))
        with _environment(_THREAD_ENV):
            pending = {self._pool.submit(run_in_worker, task) for task in tasks}
        finished = False
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
            finished = True
        finally:
            if not finished:  # interrupted: do not wait for episodes nobody will record
                self._stop_pool(wait_for_workers=False)

    def _run_ray(self, tasks: Sequence[Task]) -> Iterator[EpisodeResult]:
        if self._ray is None:
            self._ray = _start_ray(self.workers, self.ray_address)
        ray, remote, _ = self._ray
        pending = [remote.remote(task) for task in tasks]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    yield ray.get(ref)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def _stop_pool(self, wait_for_workers: bool) -> None:
        if self._pool is None:
            return
        if not wait_for_workers:
            for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                process.terminate()
        self._pool.shutdown(wait=wait_for_workers, cancel_futures=True)
        self._pool = None

    def close(self, wait: bool = True) -> None:
        """Ends the workers (and the Ray this executor started); without `wait`, episodes
        still running are killed rather than awaited."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None
        self._stop_pool(wait_for_workers=wait)
        if self._ray is not None:
            ray, _, started = self._ray
            self._ray = None
            if started:
                ray.shutdown()

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(wait=exc_type is None)  # after an error or Ctrl-C nobody waits for the episodes


def run_tasks(tasks: Sequence[Task], backend: str = "local", workers: Optional[int] = None,
              ray_address: Optional[str] = None, render_mode: Optional[str] = None) -> Iterator[EpisodeResult]:
    """Runs one list of tasks on a fresh Executor, yielding results as episodes finish (bad
    arguments raise at the call)."""
    executor = Executor(backend, workers, ray_address, render_mode)
    return _closing(executor, executor.run(tasks))


def _closing(executor: Executor, results: Iterator[EpisodeResult]) -> Iterator[EpisodeResult]:
    try:
        yield from results
    finally:
        if hasattr(results, "close"):
            results.close()  # first the run (on an interruption it stops its workers at once) ...
        executor.close()  # ... then the executor


def _start_pool(workers: int) -> ProcessPoolExecutor:
    # Linux forks the workers: they start at once with torch and PyBullet already imported
    # (a spawned worker spends ~3 s importing torch). Elsewhere fork is unsafe: spawn.
    # Workers start at submit; a spawned one reads the thread settings before its imports.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                               initializer=_init_worker, initargs=(os.getpid(),))


def _init_worker(parent: int) -> None:
    """Pool worker start-up: one torch thread (first, as torch's DataLoader does in forked
    workers: an OpenMP pool does not survive a fork); Ctrl-C is the parent's to handle; and the
    worker ends when the parent is killed (nothing would collect its results)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker inherits the CLI's handler
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` set, for child processes started inside the block."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _ray_run(task: Task) -> EpisodeResult:
    """The Ray task (a plain function so Ray pickles it by reference)."""
    return run_in_worker(task)


def _start_ray(workers: int, address: Optional[str]) -> tuple:
    """(ray, the remote episode function, whether Ray was started here)."""
    try:
        import ray
    except ImportError:
        raise UsageError("--backend ray needs Ray: pip install 'navctl[ray]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR, runtime_env={"env_vars": dict(_THREAD_ENV)})
    return ray, ray.remote(num_cpus=1, max_retries=0)(_ray_run), started
