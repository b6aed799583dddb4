"""digitlab.warm_server: commands share one warm server per cache folder, which makes the calls
they would make themselves, and which a changed file, another set-up, a kill or an idle spell
replaces or ends, never leaving a command without an answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import alive, gone
from digitlab import warm_server
from digitlab.data import split

# a command's part: connect, call, say which handler and server answered, and what
COMMAND = """
import os, sys
from digitlab import warm_server
warm_server._wanted = True
warm_server.start()
value = warm_server.begin(os.getcwd)()
c = warm_server._connection
print(c.pid if c else 0, c.server if c else 0, value, flush=True)
"""


def _command(tmp_path: Path, cwd: Path | None = None, **env: str) -> tuple[int, int, str]:
    environment = {**os.environ, "DIGITLAB_CACHE": str(tmp_path / "cache"),
                   warm_server.IDLE_VARIABLE: "30", **env}
    done = subprocess.run([sys.executable, "-c", COMMAND], capture_output=True, text=True,
                          timeout=120, env=environment, cwd=cwd or tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    handler, server, value = done.stdout.split()
    return int(handler), int(server), value


@pytest.fixture()
def servers():
    """The servers a test started, killed at its end."""
    started: list[int] = []
    yield started
    for pid in started:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_commands_share_one_server_each_in_a_handler_of_its_own(tmp_path, servers):
    first, server, cwd = _command(tmp_path)
    servers.append(server)
    second, again, _ = _command(tmp_path)
    assert again == server and second != first  # warm for the second: a handler each
    assert Path(cwd) == tmp_path  # the call runs in its command's folder
    assert gone(first) and gone(second) and alive(server)


def test_a_changed_file_or_another_set_up_gets_a_fresh_server(tmp_path, servers):
    _, server, _ = _command(tmp_path)
    servers.append(server)
    _, other, _ = _command(tmp_path, MPLBACKEND="svg")  # another matplotlib set-up
    servers.append(other)
    assert other != server and gone(server)  # the stale one ended
    folder = tmp_path / "styled"
    folder.mkdir()
    (folder / "matplotlibrc").write_text("lines.linewidth: 3\n")  # read as matplotlib imports
    _, styled, _ = _command(tmp_path, cwd=folder, MPLBACKEND="svg")
    servers.append(styled)
    assert styled != other
    assert _command(tmp_path, cwd=folder, MPLBACKEND="svg")[1] == styled  # and it is kept
    time.sleep(0.01)
    (folder / "matplotlibrc").write_text("lines.linewidth: 4\n")  # an edit of a file it read
    _, edited, _ = _command(tmp_path, cwd=folder, MPLBACKEND="svg")
    servers.append(edited)
    assert edited != styled and gone(styled)


def test_a_killed_server_is_replaced_by_the_next_command(tmp_path, servers):
    _, server, _ = _command(tmp_path)
    os.kill(server, signal.SIGKILL)  # its socket is left behind, answered by nobody
    assert gone(server)
    _, fresh, _ = _command(tmp_path)
    servers.append(fresh)
    assert fresh != server and alive(fresh)


def test_commands_starting_together_start_one_server(tmp_path, servers):
    environment = {**os.environ, "DIGITLAB_CACHE": str(tmp_path / "cache"),
                   warm_server.IDLE_VARIABLE: "30"}
    commands = [subprocess.Popen([sys.executable, "-c", COMMAND], stdout=subprocess.PIPE,
                                 text=True, env=environment, cwd=tmp_path) for _ in range(3)]
    answers = [command.communicate(timeout=120)[0].split() for command in commands]
    servers.extend(int(answer[1]) for answer in answers)
    assert len({answer[1] for answer in answers}) == 1
    assert len({answer[0] for answer in answers}) == 3


def test_an_idle_server_ends_and_takes_its_socket(tmp_path, servers):
    handler, server, _ = _command(tmp_path, **{warm_server.IDLE_VARIABLE: "1"})
    servers.append(server)
    assert gone(handler) and alive(server)
    assert gone(server, within=10)
    assert not (tmp_path / "cache" / "warm-server" / "socket").exists()


def test_a_server_whose_socket_is_removed_ends(tmp_path, servers):
    _, server, _ = _command(tmp_path)
    servers.append(server)
    (tmp_path / "cache" / "warm-server" / "socket").unlink()
    assert gone(server, within=10)


def test_idle_zero_is_a_server_of_one_command(tmp_path, servers):
    handler, server, _ = _command(tmp_path, **{warm_server.IDLE_VARIABLE: "0"})
    servers.append(server)
    assert gone(handler) and gone(server)


def test_a_split_made_by_the_server_is_the_split_made_here(tmp_path, monkeypatch, servers):
    monkeypatch.setenv("DIGITLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(warm_server.IDLE_VARIABLE, "0")
    monkeypatch.setattr(warm_server, "_connection", None)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    y = np.random.default_rng(0).integers(0, 10, 500)
    here = split._train_test_rows(y, 100, True, 7)
    warm_server.use()
    warm_server.start()
    try:
        there = warm_server.begin(split._train_test_rows, y, 100, True, 7)()
        servers.append(warm_server._connection.server)
        assert warm_server._connection.pid != os.getpid()  # made there, not by the fallback
        assert warm_server.begin(split._train_test_rows, y[:3], 100, True, 7)().startswith(
            "test_size=100 should be")  # why it cannot split, not an error of the server
    finally:
        warm_server.not_here()
    for side in ("train", "test"):
        assert np.array_equal(here[side], there[side])


def test_without_a_server_the_call_is_made_here(monkeypatch):
    monkeypatch.setattr(warm_server, "_connection", None)
    assert warm_server.begin(os.getpid)() == os.getpid()
    assert warm_server.begin(os.getpid, here=os.getppid)() == os.getppid()


@pytest.mark.parametrize("shared", [False, True])
def test_a_cache_it_cannot_use_leaves_the_calls_here_with_a_warning(tmp_path, monkeypatch,
                                                                   caplog, shared):
    if shared:  # a server folder others may enter: their pickles are not to be trusted
        (tmp_path / "cache" / "warm-server").mkdir(parents=True)
        (tmp_path / "cache" / "warm-server").chmod(0o777)
        monkeypatch.setenv("DIGITLAB_CACHE", str(tmp_path / "cache"))
    else:  # a cache folder that is a file
        (tmp_path / "cache").write_text("")
        monkeypatch.setenv("DIGITLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(warm_server, "_connection", None)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    warm_server.use()
    warm_server.start()
    assert warm_server._connection is None and not warm_server._wanted
    assert "no warm server" in caplog.text
    assert warm_server.begin(os.getpid)() == os.getpid()
    assert not (tmp_path / "cache" / "warm-server" / "socket").exists()
