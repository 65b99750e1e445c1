"""An exclusive lock on a run folder: one ``hashkit train`` writes a run at a time.

Two processes training into one folder used to both exit 0 and leave a folder mixing two runs
(the config of one seed, the codes of the other, interleaved ``metrics.jsonl``). The Trainer
takes this lock before it looks at the folder and holds it until the run ends.

How it works: ``RUN/.hashkit.lock`` is opened and locked with ``fcntl.flock(LOCK_EX |
LOCK_NB)``. The kernel drops a ``flock`` when its process dies, however it dies (``kill -9``
included), so a lock *file* left behind by a dead process is detected as stale -- the flock
on it succeeds -- and taken over with one message; a lock held by a live process fails at once
with an error naming its pid, host and start time (written into the file). Where ``fcntl`` is
missing (Windows) ``msvcrt.locking`` plays the same part (also dropped when the process dies).

``flock`` does not reach across machines on every network file system; two hosts training
into one NFS folder are not guarded (the recorded host name is in the error when they are).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

__all__ = ["RunLock", "RunLockedError", "LOCK_NAME"]

LOCK_NAME = ".hashkit.lock"

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


class RunLockedError(RuntimeError):
    """Another live process holds the run folder's lock."""


def _describe(info: dict) -> str:
    if not info:
        return "another process"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("time", 0)))
    return f"pid {info.get('pid')} on {info.get('host')} (since {when})"


def _read_info(path: Path) -> dict:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


class RunLock:
    """Exclusive, non-blocking lock on ``folder`` (created if missing).

    Parameters
    ----------
    folder : path
        The run folder.
    log : callable, optional
        Receives one line when a stale lock (left by a process that died) is taken over.

    Examples
    --------
    >>> with RunLock("runs/x/32bits-seed0"):      # doctest: +SKIP
    ...     ...                                     # nobody else writes the run here
    """

    def __init__(self, folder, log=None):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.log = log
        self._fd: int | None = None
        self.stale: dict | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunLock":
        """Take the lock or raise :class:`RunLockedError` at once (never waits).

        Raises
        ------
        RunLockedError
            A live process holds it (the message names it).
        OSError
            The folder cannot be created or written.
        """
        if self._fd is not None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover - Windows
            return self._acquire_msvcrt()
        while True:
            existed = self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunLockedError(f"{self.folder} is being written by {_describe(_read_info(self.path))}; "
                                     f"wait for that run to end or choose another --out") from None
            # The holder before us may have unlinked the file between our open and our flock:
            # then we hold a lock on a file nobody else can find. Start again on the new one.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        if existed:
            info = _read_info(self.path)
            self.stale = info
            if self.log is not None:
                self.log(f"{self.folder}: took over a stale lock left by {_describe(info)}, which no longer runs")
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def _acquire_msvcrt(self) -> "RunLock":  # pragma: no cover - Windows
        import msvcrt

        existed = self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            os.close(fd)
            raise RunLockedError(f"{self.folder} is being written by another process; "
                                 f"wait for that run to end or choose another --out") from None
        if existed and self.log is not None:
            self.log(f"{self.folder}: took over a stale lock left by a process that no longer runs")
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock and remove the lock file (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if fcntl is None:  # pragma: no cover - Windows cannot unlink an open file
            os.close(fd)
            try:
                self.path.unlink()
            except OSError:
                pass
            return
        # Unlink while still holding the lock, so that nobody locks the old inode after us
        # believing it is current (acquire re-checks the inode for the same reason).
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):  # a Trainer dropped without fit() finishing must not keep the folder
        try:
            self.release()
        except Exception:
            pass
