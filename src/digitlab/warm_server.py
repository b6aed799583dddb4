"""The warm server: one process per cache folder that has imported scikit-learn and matplotlib
(≈ 1.3 s, more than a digits run takes) and runs, for every command that connects, the calls
that need them: a split's train_test_split and a run's reports. Commands pay those imports once
rather than each time; a command that cannot have the server makes the calls itself, and so does
any process that did not ask for it (`use`), such as a parallel sweep's workers.

A command connects to `<cache>/warm-server/socket` ($DIGITLAB_CACHE, else ~/.cache/digitlab),
starting the server there when none answers; the first command waits for the imports as it would
for its own. Each connection is served by a child forked for it (its handler), so no command
sees another's state and a call that crashes ends only its own connection.

The server ends when no command has been connected for DIGITLAB_WARM_SERVER_IDLE seconds
(IDLE_SECONDS; 0 ends it with its last command, as a helper of that command alone), when its
socket is removed or replaced, and when it is stale: a file it imported changed on disk, or a
command runs another interpreter, another digitlab or another matplotlib set-up than it was
started with. A stale server answers the command that found it so, and that command starts a
fresh one.

    python -m digitlab.warm_server FD PATH INODE    the server, listening on socket FD
"""

from __future__ import annotations

import fcntl
import logging
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

IDLE_VARIABLE = "DIGITLAB_WARM_SERVER_IDLE"
IDLE_SECONDS = 600.0  # a researcher's pause between two runs, not a day
TICK = 0.5  # how often the server looks at its handlers and its socket
STALE = 3  # the exit code of a handler that found its server stale
# a server that has not answered, or taken a call, by then is stuck: its handler is killed and
# the command makes the call itself
ANSWER_SECONDS = 60.0


_connection: _Connection | None = None
_wanted = False


def idle_seconds() -> float:
    """DIGITLAB_WARM_SERVER_IDLE, or IDLE_SECONDS; a value that is not a number of seconds ≥ 0
    is a ValueError that says so (the command refuses it before it runs anything)."""
    text = os.environ.get(IDLE_VARIABLE, "")
    try:
        value = float(text) if text else IDLE_SECONDS
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ValueError(f"{IDLE_VARIABLE}={text!r}: expected a number of seconds ≥ 0 "
                         f"(default {IDLE_SECONDS:g}; 0 ends the warm server with its command); "
                         "fix or unset it.")
    return value


def use() -> None:
    """This process's calls go to the warm server from now on, where the machine has a core for
    it; `not_here` undoes it for a process whose jobs run in workers."""
    global _wanted
    _wanted = (os.cpu_count() or 1) > 1


def start() -> None:
    """This command connected to the server, if wanted and not connected; a server started now
    has imported scikit-learn and matplotlib by the time the command calls it."""
    global _connection, _wanted
    try:
        idle_seconds()
    except ValueError:  # refused by the command's preflight, in its words
        _wanted = False
    if _wanted and _connection is None:
        try:
            _connection = _Connection()
        except OSError as exc:
            log.warning("scikit-learn and matplotlib are imported here: no warm server (%s)", exc)
            _wanted = False


def not_here() -> None:
    """This process runs no job itself (its launcher's workers do): no server, now or later."""
    global _wanted
    stop()
    _wanted = False


def stop() -> None:
    """This command's handler ended, at the command's end: every answer it needed is read."""
    global _connection
    if _connection is not None:
        _connection.close()
        _connection = None


def begin(function: Callable[..., Any], *args: Any,
          here: Callable[..., Any] | None = None) -> Callable[[], Any]:
    """`function(*args)` begun in the server; the function returned waits for its value. Without
    a server, or when it fails, dies or does not answer, `here(*args)` (default: `function`) is
    called in this process instead, so a failure of the server costs only time."""
    here = here or function
    if _connection is None:
        value = here(*args)
        return lambda: value
    try:
        waiting = _connection.call(function, args)
    except (OSError, EOFError, TimeoutError):  # the server died or hangs
        waiting = None

    def wait() -> Any:
        try:
            if waiting is not None:
                return waiting()
        except (OSError, EOFError, TimeoutError, RuntimeError) as exc:
            log.warning("the warm server failed (%s); calling %s here", exc, here.__name__)
        except BaseException:  # a stop signal: the server's answer is left unread
            not_here()
            raise
        not_here()  # the server failed: this process makes its own calls from now on
        return here(*args)

    return wait


class _Connection:
    """This command's connection to the server and the handler serving it there."""

    def __init__(self) -> None:
        self._connect(fresh=False)

    def _connect(self, fresh: bool) -> None:
        self.socket = connect(fresh)
        self.fd = self.socket.fileno()
        send(self.fd, {"cwd": os.getcwd(), "setup": setup()})
        self.pidfd: int | None = None  # of the handler, once its hello is read
        self.pid = self.server = 0  # the handler's and its server's, from the hello
        self.unanswered = False

    def call(self, function: Callable[..., Any], args: tuple) -> Callable[[], Any]:
        self._drain()
        if self.pidfd is None:
            self._greet()
        send(self.fd, (function, args), ANSWER_SECONDS)
        self.unanswered = True
        return self._answer

    def _greet(self) -> None:
        """The handler's hello read; a stale server (a changed file, another set-up) is
        replaced by a fresh one, which imports as a first command's server does."""
        hello = self._read()
        if hello["stale"]:
            self.socket.close()
            self._connect(fresh=True)
            hello = self._read()
            if hello["stale"]:
                raise ConnectionError("a warm server started for this command is stale")
        self.pid, self.server = hello["pid"], hello["server"]
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except OSError:  # a kernel without pidfds: a hung handler ends when it reads the close
            self.pidfd = -1

    def _read(self) -> Any:
        if not select.select([self.fd], [], [], ANSWER_SECONDS)[0]:
            raise TimeoutError(f"no answer in {ANSWER_SECONDS:g} s")
        return receive(self.fd)

    def _answer(self) -> Any:
        if not self.unanswered:  # read already, by the next call's _drain
            return None
        done, value = self._read()
        self.unanswered = False
        if not done:
            raise RuntimeError(value)
        return value

    def _drain(self) -> None:
        """The answer to a call whose command stopped waiting for it (a stopped run's reports,
        whose folder may be gone, so it may be an error), read before the next call: each
        answer is then the answer to its own call."""
        if self.unanswered:
            try:
                self._answer()
            except RuntimeError:
                pass

    def close(self) -> None:
        """The handler ended (killed: it may be writing for a run that stopped, or hang) and
        the connection closed; the server stays for the next command."""
        if self.pidfd is not None and self.pidfd >= 0:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.close(self.pidfd)
        self.pidfd = None
        self.socket.close()


def folder() -> Path:
    from digitlab.data.cache import cache_root

    return cache_root() / "warm-server"


def setup() -> dict[str, str]:
    """What a call's result depends on besides the files a server has imported: a server started
    with another set-up is stale for this command."""
    import digitlab

    return {"executable": sys.executable, "version": sys.version, "digitlab": digitlab.__file__,
            **{name: value for name, value in os.environ.items()
               if name == "PYTHONPATH" or name.startswith(("MPL", "MATPLOTLIB"))}}


def connect(fresh: bool = False) -> socket.socket:
    """A connection to the server, which is started when none answers; `fresh`: a new server
    replaces the one there. The server's first answer on it is its hello (`serve`)."""
    where = folder()
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    owner = where.stat()
    if owner.st_uid != os.getuid() or owner.st_mode & 0o077:  # calls and answers are pickles
        raise PermissionError(f"{where} is not this user's alone (mode "
                              f"{owner.st_mode & 0o777:o}, owner {owner.st_uid}): no warm server")
    path = where / "socket"
    connection = None if fresh else _connected(path)
    if connection is None:
        with _locked(where):
            connection = None if fresh else _connected(path)  # started meanwhile by another
            if connection is None:
                _start(path)
                connection = _connected(path)
    if connection is None:
        raise ConnectionRefusedError(f"the warm server at {path} does not answer")
    return connection


def _connected(path: Path) -> socket.socket | None:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):  # none there, or a dead one's socket
        connection.close()
        return None
    return connection


@contextmanager
def _locked(where: Path) -> Iterator[None]:
    """The folder's lock: one command at a time starts a server or replaces the socket."""
    with open(where / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _start(path: Path) -> None:
    """A server listening at `path`, detached from the command's terminal (setsid: Ctrl-C is the
    command's to handle) and not the command's child: it outlives the command. The socket is
    bound here, so a command's connection waits in its backlog while the server imports."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound = path.with_name(f"socket.{os.getpid()}")
    bound.unlink(missing_ok=True)
    listener.bind(str(bound))
    listener.listen(64)
    os.replace(bound, path)
    command = [sys.executable, "-m", "digitlab.warm_server", str(listener.fileno()),
               str(path), str(path.stat().st_ino)]
    # one BLAS thread: the server's arithmetic is small, and the run has the other cores
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    with open(path.with_name("server.log"), "wb") as log:  # started here: matplotlib reads
        _detached(lambda: subprocess.Popen(  # a ./matplotlibrc as it imports
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            pass_fds=(listener.fileno(),), start_new_session=True))
    listener.close()


def _detached(start: Callable[[], object]) -> None:
    """`start` called in a child that exits at once, so what it starts is init's child, not
    this process's: nobody here is left to reap it."""
    child = os.fork()
    if child == 0:
        status = 1
        try:
            start()
            status = 0
        finally:
            os._exit(status)
    os.waitpid(child, 0)


def send(fd: int, message: Any, seconds: float | None = None) -> None:
    """`message` written to `fd`; with `seconds`, a reader that takes none of it for that long
    is a TimeoutError. A request outgrows the socket's buffer (a test set's outputs), so it goes
    in pieces of PIPE_BUF, each of which a writable socket takes without blocking."""
    data = pickle.dumps(message)
    view = memoryview(struct.pack("<Q", len(data)) + data)
    while view:
        if seconds is not None and not select.select([], [fd], [], seconds)[1]:
            raise TimeoutError(f"the warm server took no call in {seconds:g} s")
        view = view[os.write(fd, view[:select.PIPE_BUF]):]


def receive(fd: int) -> Any:
    (size,) = struct.unpack("<Q", _read_exactly(fd, 8))
    return pickle.loads(_read_exactly(fd, size))


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            raise EOFError("the other end of the warm server's connection closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def serve(listener: socket.socket, path: Path, inode: int,
          imported: dict[str, tuple[int, int]]) -> None:
    """Accept commands until idle, stale or displaced; each is served by a forked child, which
    first answers the command's hello {"pid", "server", "stale"} and then its calls (`_handle`).
    `imported`: the files the server's code came from, as `_imported_files` saw them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    own = setup()
    idle = idle_seconds()
    handlers: set[int] = set()
    quiet_since = time.monotonic()
    stale = False
    while not stale and _still_at(path, inode):
        if select.select([listener], [], [], TICK)[0]:
            handlers.add(_fork_handler(listener, imported, own))
        for pid in list(handlers):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                handlers.discard(pid)
                stale = stale or os.waitstatus_to_exitcode(status) == STALE
        if handlers:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= idle:
            break
    with _locked(path.parent):
        if _still_at(path, inode):
            path.unlink()
    while select.select([listener], [], [], 0)[0]:  # those that connected before the unlink
        _fork_handler(listener, imported, own)
    os._exit(0)


def _still_at(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino == inode
    except FileNotFoundError:
        return False


def _fork_handler(listener: socket.socket, imported: dict[str, tuple[int, int]],
                  own: dict[str, str]) -> int:
    import matplotlib

    connection, _ = listener.accept()
    pid = os.fork()
    if pid:
        connection.close()
        return pid
    status = 1
    try:
        listener.close()
        hello = receive(connection.fileno())
        os.chdir(hello["cwd"])  # relative paths and matplotlib's ./matplotlibrc are the command's
        stale = (hello["setup"] != own or _imported_files(imported) != imported
                 or matplotlib.matplotlib_fname() not in imported)
        send(connection.fileno(), {"pid": os.getpid(), "server": os.getppid(), "stale": stale})
        if stale:
            status = STALE
        else:
            _handle(connection.fileno())
            status = 0
    finally:  # the child never returns into the server's loop
        os._exit(status)


def _handle(fd: int) -> None:
    """One command's calls (function, args), answered in order: (True, value), or (False, the
    error) when the call raised."""
    while True:
        try:
            function, args = receive(fd)
        except EOFError:  # the command ended
            return
        try:
            answer = (True, function(*args))
        except Exception as exc:
            answer = (False, f"{type(exc).__name__}: {exc}")
        send(fd, answer)


def _imported_files(known: dict[str, tuple[int, int]] | None = None) -> dict[str, tuple[int, int]]:
    """(mtime, size) of every file this process has imported, and of matplotlib's rc file; with
    `known`, of those files as they are now (a missing one: (0, 0))."""
    if known is None:
        import matplotlib

        paths = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
        paths.add(matplotlib.matplotlib_fname())
        known = dict.fromkeys(path for path in paths if path)
    now = {}
    for path in known:
        try:
            stat = os.stat(path)
            now[path] = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            now[path] = (0, 0)
    return now


def main() -> None:
    from digitlab import garbage

    fd, path, inode = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    with garbage.imports_held():  # what the server is there to have imported
        import sklearn.model_selection  # noqa: F401
        import digitlab.evaluation  # noqa: F401
        import digitlab.figures  # noqa: F401
        from digitlab import reporting  # noqa: F401
    imported = _imported_files()
    os.chdir("/")  # no command's folder is held: each handler works in its own command's
    serve(socket.socket(fileno=fd), path, inode, imported)


if __name__ == "__main__":
    main()
