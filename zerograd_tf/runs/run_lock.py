"""`RunLock`: one program at a time in a run directory (or a search's).

An exclusive OS lock (`fcntl.flock`) on a lock file in the directory, so
that two runs never write into the same one. A killed process releases it
(the OS drops the lock with the process). Where files cannot be locked (no
`fcntl` on Windows; some shared file systems), one warning line, and the run
goes on unlocked. `fcntl` is imported only when a lock is taken, so that the
programs start (and answer `--help`) everywhere.
"""

import contextlib
import errno
import os
import sys

from zerograd_tf.runs import options


def _makedirs(path, flag):
    """Makes `path`; returns the folders it created (deepest first)."""
    created = []
    path = os.path.abspath(path)
    while not os.path.exists(path):
        created.append(path)
        path = os.path.dirname(path)
    try:
        for folder in reversed(created):
            os.mkdir(folder)
    except OSError as error:
        raise options.UsageError(f"{flag} {folder}: cannot create it ({error.strerror}); "
                                 f"choose another {flag}.") from None
    return created


# flock's answers where the file system (Lustre, some SMB and FUSE mounts)
# or the system has no such locks.
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP),
             errno.ENOSYS}


def _fcntl():
    """The `fcntl` module, or None where there is none (Windows)."""
    try:
        import fcntl
    except ImportError:
        return None
    return fcntl


class RunLock:
    """An exclusive lock on the lock file `path` (made with its folders).

    Holds while the object lives (or until `release`); a second lock on
    the same file, from this process or another, is refused with a
    UsageError naming `flag`. `release` removes the lock file and the
    folders this lock made, when they are empty.

    Where files cannot be locked (no `fcntl` on Windows; `flock` failing
    with ENOLCK, EOPNOTSUPP or ENOSYS on some shared file systems), one
    warning line on standard error, and nothing is locked: the run goes on.

    Args:
        path: the lock file.
        flag: the option naming the locked folder, for the message.
        prog: the program's name, for the message.
        what: what the message calls locked. Defaults to the lock file's
            folder.

    Raises:
        options.UsageError: when another process holds the lock.

    Examples:
        >>> import os, tempfile
        >>> from zerograd_tf.runs.run_lock import RunLock
        >>> folder = os.path.join(tempfile.mkdtemp(), "run")
        >>> lock = RunLock(os.path.join(folder, ".lock"), "--output", "zerograd-train")
        >>> try:
        ...     RunLock(os.path.join(folder, ".lock"), "--output", "zerograd-train")
        ... except ValueError as error:  # doctest: +ELLIPSIS
        ...     print(str(error).split(";")[0].replace(folder, "run"))
        --output run is in use by another zerograd-train run (process ...)
        >>> lock.release(); os.path.exists(folder)
        False
    """

    def __init__(self, path, flag, prog, what=None):
        self.path = path
        self._handle = None
        folder = os.path.dirname(os.path.abspath(path))
        what = what or os.path.dirname(path)
        self._created = _makedirs(folder, flag)
        fcntl = _fcntl()
        if fcntl is None:
            self._unlocked(flag, what, prog, "no file locks on this system")
            return
        while True:
            existed = os.path.exists(path)
            handle = open(path, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                handle.seek(0)
                owner = handle.read().strip() or "unknown"
                handle.close()
                if error.errno in _NO_LOCKS:
                    if not existed:
                        with contextlib.suppress(OSError):
                            os.remove(path)
                    self._unlocked(flag, what, prog, os.strerror(error.errno))
                    return
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise options.UsageError(
                    f"{flag} {what} is in use by another {prog} run (process {owner}); "
                    f"wait for it to finish, or choose another {flag}.") from None
            # A holder that released it may have removed the file after we
            # opened it: the lock must be on the file the path names now.
            try:
                same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    @staticmethod
    def _unlocked(flag, what, prog, reason):
        print(f"{prog}: warning: cannot lock {flag} {what} ({reason}); make sure no other "
              "run writes there.", file=sys.stderr)

    def release(self):
        """Removes the lock file (and the folders made for it), then unlocks."""
        if self._handle is not None:
            with contextlib.suppress(OSError):
                os.remove(self.path)
        for folder in self._created:
            try:
                os.rmdir(folder)
            except OSError:
                break
        self._created = []
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.release()
