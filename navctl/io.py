"""Files that survive a kill.

Whole files (summary.json, summary.md, plots, checkpoints' cards) are written to a temporary
file in the same directory and renamed into place, so readers see the old file or the new
one, never a part. The episode log is appended one row at a time, each row flushed and
fsynced, so a kill loses at most the row being written; `CsvLog` drops such a torn last line
when it reopens the file.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from navctl.errors import UsageError

_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path next to `path` (same suffix, for writers that go by it); when the
    block ends without an exception the temporary file replaces `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; the result is an ordinary file
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes `data` to `path` so that readers see the old file or the new one, never a part."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _csv_text(rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _values(row: dict[str, Any], fieldnames: Sequence[str]) -> list[Any]:
    return ["" if row.get(k) is None else row[k] for k in fieldnames]


def read_csv(path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a CSV file, ignoring a torn last line (one without its newline)."""
    text = Path(path).read_text(encoding="utf-8")
    text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def write_csv(path: str | os.PathLike, fieldnames: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Writes a whole CSV file atomically."""
    atomic_write_text(path, _csv_text([fieldnames, *(_values(r, fieldnames) for r in rows)]))


class CsvLog:
    """An append-only CSV file with a fixed header; each row is on disk when `append` returns.

    With `resume=True` an existing file is kept (its header must match; `rows` holds what it
    already had) and a torn last line is cut off; otherwise the file is started afresh.
    """

    def __init__(self, path: str | os.PathLike, fieldnames: Sequence[str], resume: bool = False) -> None:
        self.path = Path(path)
        self.fieldnames = list(fieldnames)
        self.rows: list[dict[str, str]] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.path.exists() and self.path.stat().st_size > 0:
            header, self.rows = read_csv(self.path)
            if header != self.fieldnames:
                raise UsageError(f"{self.path}: cannot resume: its columns are not {','.join(self.fieldnames)}")
            with open(self.path, "rb+") as f:
                data = f.read()
                f.truncate(data.rfind(b"\n") + 1)
            self._file = open(self.path, "a", encoding="utf-8", newline="")
        else:
            self._file = open(self.path, "w", encoding="utf-8", newline="")
            self._write(self.fieldnames)

    def _write(self, values: Sequence[Any]) -> None:
        self._file.write(_csv_text([values]))
        self._file.flush()
        os.fsync(self._file.fileno())

    def append(self, row: dict[str, Any]) -> None:
        """Writes one row (missing fields empty) and forces it to disk."""
        unknown = set(row) - set(self.fieldnames)
        if unknown:
            raise ValueError(f"CsvLog.append: unknown fields {sorted(unknown)}")
        self._write(_values(row, self.fieldnames))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "CsvLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
