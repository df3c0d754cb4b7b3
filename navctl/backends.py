"""Where episodes run: this process, a local process pool, or Ray. Results stream back as
they finish (in any order); every backend gives the same row for the same task.

    local, workers=1   in this process (needed for the GUI, and easy to debug)
    local, workers>1   a pool of worker processes, each with its own PyBullet DIRECT client
    ray                Ray tasks on a local Ray started on demand, or on `ray_address`
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


def run_tasks(tasks: Sequence[Task], backend: str = "local", workers: Optional[int] = None,
              ray_address: Optional[str] = None, render_mode: Optional[str] = None) -> Iterator[EpisodeResult]:
    """Runs every task on the backend, yielding results as episodes finish.

    `workers` defaults to os.cpu_count(); `render_mode` needs the in-process backend
    (local with one worker). Closing the iterator early cancels what has not started.
    """
    workers = workers or os.cpu_count() or 1
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r} (valid: {', '.join(BACKENDS)})")
    if render_mode is not None and (backend != "local" or workers != 1):
        raise ValueError("rendering needs the local backend with one worker")
    if not tasks:
        return iter(())
    if backend == "ray":
        return _run_ray(tasks, workers, ray_address)
    if workers == 1 or len(tasks) == 1:
        return _run_here(tasks, render_mode)
    return _run_pool(tasks, min(workers, len(tasks)))


def _run_here(tasks: Sequence[Task], render_mode: Optional[str]) -> Iterator[EpisodeResult]:
    runner = Runner(render_mode)
    try:
        for task in tasks:
            yield runner.run(task)
    finally:
        runner.close()


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


def _run_pool(tasks: Sequence[Task], workers: int) -> Iterator[EpisodeResult]:
    # Linux forks the workers: they start at once with torch and PyBullet already imported
    # (a spawned worker spends ~3 s importing torch). Elsewhere fork is unsafe: spawn.
    # Workers start at submit; a spawned one reads the thread settings before its imports.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                               initializer=_init_worker, initargs=(os.getpid(),))
    with _environment(_THREAD_ENV):
        pending = {pool.submit(run_in_worker, task) for task in tasks}
    finished = False
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
        finished = True
    finally:
        if not finished:  # interrupted: do not wait for episodes nobody will record
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
        pool.shutdown(wait=finished, cancel_futures=True)


def _ray_run(task: Task) -> EpisodeResult:
    """The Ray task (a plain function so Ray pickles it by reference)."""
    return run_in_worker(task)


def _run_ray(tasks: Sequence[Task], workers: int, address: Optional[str]) -> Iterator[EpisodeResult]:
    try:
        import ray
    except ImportError:
        raise UsageError("--backend ray needs Ray: pip install 'navctl[ray]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR, runtime_env={"env_vars": dict(_THREAD_ENV)})
    remote = ray.remote(num_cpus=1, max_retries=0)(_ray_run)
    pending = [remote.remote(task) for task in tasks]
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield ray.get(ref)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
