"""Silence PyBullet's C-level prints (URDF warnings on stdout, the build banner on stderr)."""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from typing import Iterator

_LIBC = ctypes.CDLL(None)


@contextlib.contextmanager
def c_output_silenced() -> Iterator[None]:
    """Point file descriptors 1 and 2 at /dev/null while PyBullet's C code runs.

    PyBullet writes with printf, below Python's sys.stdout, so only a dup2 of the
    descriptors keeps it from flooding a user's terminal. Python exceptions raised inside
    still propagate normally.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        _LIBC.fflush(None)  # C's stdio buffers, or the text would surface after we restore
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


# Every module of envs takes pybullet from here, so its build banner never reaches the terminal.
with c_output_silenced():
    import pybullet  # noqa: E402

__all__ = ["c_output_silenced", "pybullet"]
