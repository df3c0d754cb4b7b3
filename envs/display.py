"""Is there a display PyBullet's GUI can open? Asked before `p.connect(p.GUI)`.

On Linux PyBullet's GUI opens an X11 window; when it cannot, it calls exit() inside C code
(with its output silenced), which ends the whole Python process with no message. So the
environment asks X11 itself first: libX11's XOpenDisplay, the call PyBullet would make.
Other platforms (macOS, Windows) open their own windows and are not checked.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import Optional

HEADLESS_HINT = ("to watch headless, use render_mode='rgb_array' (frames from env.render()) "
                 "or `navctl run --video FILE.mp4`")


class NoDisplayError(RuntimeError):
    """render_mode='human' asked for where no window can be opened; the message says why and
    what to use instead."""


def _x11_problem() -> Optional[str]:
    """Why an X11 window cannot be opened, or None when it can."""
    name = os.environ.get("DISPLAY", "")
    if not name:
        return "no X11 display is set (DISPLAY is empty)"
    lib = ctypes.util.find_library("X11")
    if lib is None:
        return "libX11 is not installed"
    x11 = ctypes.CDLL(lib)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = x11.XOpenDisplay(None)  # None: the display named by $DISPLAY
    if not handle:
        return f"the X11 display DISPLAY={name!r} cannot be opened"
    x11.XCloseDisplay(handle)
    return None


def check_gui_display() -> None:
    """Raises NoDisplayError when PyBullet's GUI could not open its window here."""
    if not sys.platform.startswith("linux"):
        return
    problem = _x11_problem()
    if problem is not None:
        raise NoDisplayError(f"render_mode='human' opens PyBullet's GUI window, but {problem}; {HEADLESS_HINT}")
