"""The bwrap sandbox the grader runs notebooks in: each test runs a small script in a box."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnli_lesson import sandbox

REASON = sandbox.unavailable()
needs_box = pytest.mark.skipif(REASON is not None, reason=f"no sandbox here: {REASON}")
REPO = Path(__file__).resolve().parent.parent


def make_box(tmp_path: Path, **kw) -> sandbox.Box:
    """A box that can run the current interpreter, with tmp_path/exchange at /exchange."""
    exchange = tmp_path / "exchange"
    exchange.mkdir(exist_ok=True)
    ro = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent}
    kw.setdefault("read_only", tuple(sorted(ro)))
    kw.setdefault("replace", ())
    kw.setdefault("env", {"PATH": "/usr/bin:/bin", "HOME": "/box/home"})
    return sandbox.Box(exchange=exchange, **kw)


def run(box: sandbox.Box, code: str, *args: str) -> subprocess.CompletedProcess:
    """Run python -c code in the box; fail (not hang) past 60 s."""
    argv = sandbox.command(box, [sys.executable, "-c", code, *args])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **sandbox.popen_kwargs(box))
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        sandbox.kill(proc)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def result(box: sandbox.Box, code: str, *args: str):
    """Run code, which prints one JSON value last; return that value."""
    done = run(box, code, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def host_procs_with(marker: str) -> list[int]:
    """Host pids whose command line contains marker."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(pid))
    return found


def test_unavailable_gives_a_reason_without_bwrap(monkeypatch):
    sandbox.unavailable.cache_clear()
    monkeypatch.setattr(sandbox, "_find_bwrap", lambda: None)
    try:
        reason = sandbox.unavailable()
        assert isinstance(reason, str) and "bwrap" in reason
    finally:
        sandbox.unavailable.cache_clear()


@needs_box
def test_environment_does_not_leak(tmp_path, monkeypatch):
    monkeypatch.setenv("MNLI_GRADER_SECRET", "hunter2")
    box = make_box(tmp_path, env={"PATH": "/usr/bin:/bin", "ONLY": "this"})
    env = result(box, "import json, os; print(json.dumps(dict(os.environ)))")
    assert "MNLI_GRADER_SECRET" not in env and "hunter2" not in json.dumps(env)
    assert env["ONLY"] == "this"
    assert set(env) <= {"PATH", "ONLY", "PWD", "LC_CTYPE"}  # bwrap sets PWD, Python LC_CTYPE


@needs_box
def test_host_processes_are_invisible(tmp_path):
    code = ("import json, os; print(json.dumps([sorted(int(p) for p in os.listdir('/proc') "
            "if p.isdigit()), open('/proc/1/cmdline', 'rb').read().decode(errors='replace')]))")
    pids, init = result(make_box(tmp_path), code)
    assert os.getpid() not in pids and os.getppid() not in pids
    assert len(pids) < 10  # bwrap's pid 1 and the script, nothing of the host's
    assert init != Path("/proc/1/cmdline").read_bytes().decode(errors="replace")


@needs_box
def test_files_outside_the_binds_are_invisible(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("answer key")
    assert (REPO / "tests").is_dir()
    seen = result(make_box(tmp_path), "import json, os, sys; "
                  "print(json.dumps([os.path.exists(p) for p in sys.argv[1:]]))",
                  str(secret), str(REPO / "tests"), str(REPO / "tests" / "test_sandbox.py"))
    assert seen == [False, False, False]


@needs_box
def test_read_only_binds_and_replace(tmp_path):
    orig, new = tmp_path / "orig", tmp_path / "new"
    orig.mkdir()
    new.mkdir()
    (orig / "original.txt").write_text("x")
    (new / "replacement.txt").write_text("y")
    box = make_box(tmp_path)
    box = make_box(tmp_path, read_only=(*box.read_only, orig), replace=((new, orig),))
    code = ("import json, os, sys\n"
            "try:\n    open(os.path.join(sys.prefix, 'pwned'), 'w'); wrote = True\n"
            "except OSError:\n    wrote = False\n"
            "o = sys.argv[1]\n"
            "print(json.dumps([wrote, os.path.exists(o + '/original.txt'),"
            " open(o + '/replacement.txt').read()]))")
    assert result(box, code, str(orig)) == [False, False, "y"]
    assert not Path(sys.prefix, "pwned").exists()


@needs_box
def test_no_network_but_loopback_works(tmp_path):
    code = ("import json, socket, time\nt = time.monotonic()\n"
            "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=5); out = True\n"
            "except OSError:\n    out = False\n"
            "t = time.monotonic() - t\n"
            "srv = socket.create_server(('127.0.0.1', 0))\n"
            "cli = socket.create_connection(srv.getsockname(), timeout=5)\n"
            "conn, _ = srv.accept(); cli.sendall(b'ping')\n"
            "print(json.dumps([out, t, conn.recv(4).decode()]))")
    out, seconds, echoed = result(make_box(tmp_path), code)
    assert out is False and seconds < 1
    assert echoed == "ping"


BACKGROUND = ("import subprocess, sys\n"
              "subprocess.Popen(['sleep', sys.argv[1]], start_new_session=True)\n"
              "open('/exchange/started', 'w').close()\n"
              "if sys.argv[2] == 'wait':\n    subprocess.run(['sleep', '600'])\n")


def gone(marker: str) -> bool:
    for _ in range(40):  # the kernel reaps a dead pid namespace quickly, but not instantly
        if not host_procs_with(marker):
            return True
        time.sleep(0.05)
    return False


@needs_box
def test_background_processes_end_with_the_run(tmp_path):
    marker = f"6{os.getpid() % 100000}.5"  # `sleep <marker>`: unique on this host
    done = run(make_box(tmp_path), BACKGROUND, marker, "exit")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "exchange" / "started").exists()
    assert gone(f"sleep {marker}")


@needs_box
def test_kill_ends_every_process_in_the_box(tmp_path):
    marker = f"7{os.getpid() % 100000}.5"
    box = make_box(tmp_path)
    proc = subprocess.Popen(sandbox.command(box, [sys.executable, "-c", BACKGROUND, marker,
                                                  "wait"]), **sandbox.popen_kwargs(box))
    try:
        for _ in range(200):
            if (tmp_path / "exchange" / "started").exists():
                break
            time.sleep(0.05)
        assert host_procs_with(f"sleep {marker}"), "the background process never started"
    finally:
        sandbox.kill(proc)
    assert proc.returncode is not None
    assert gone(f"sleep {marker}")


@needs_box
def test_file_size_limit(tmp_path):
    box = make_box(tmp_path, limits=sandbox.Limits(file_bytes=1 << 20))
    code = ("import json\ntry:\n    open('/box/tmp/big', 'wb').write(bytes(2 << 20)); ok = True\n"
            "except OSError as e:\n    ok = e.errno\n"
            "open('/box/tmp/small', 'wb').write(bytes(1 << 19))\nprint(json.dumps(ok))")
    assert result(box, code) == 27  # EFBIG; a smaller file is fine


@needs_box
def test_memory_limit(tmp_path):
    box = make_box(tmp_path, limits=sandbox.Limits(memory_bytes=1 << 30))
    code = ("import json\nsmall = bytearray(100 << 20)\n"
            "try:\n    big = bytearray(2 << 30); ok = True\n"
            "except MemoryError:\n    ok = False\nprint(json.dumps(ok))")
    assert result(box, code) is False


@needs_box
def test_fork_bomb_is_capped(tmp_path):
    box = make_box(tmp_path, limits=sandbox.Limits(processes=20))
    code = ("import json, os, time\nforked, error = 0, None\n"
            "for _ in range(200):\n"
            "    try:\n        pid = os.fork()\n"
            "    except OSError as e:\n        error = e.errno; break\n"
            "    if pid == 0:\n        time.sleep(30); os._exit(0)\n"
            "    forked += 1\n"
            "print(json.dumps([forked, error]))")
    forked, error = result(box, code)
    assert error == 11 and forked < 20  # EAGAIN before the 20th process


@needs_box
def test_exchange_is_writable_and_shared(tmp_path):
    box = make_box(tmp_path)
    (tmp_path / "exchange" / "in.txt").write_text("input")
    code = ("import json\ndata = open('/exchange/in.txt').read()\n"
            "open('/exchange/out.txt', 'w').write(data + ' seen')\nprint(json.dumps(data))")
    assert result(box, code) == "input"
    assert (tmp_path / "exchange" / "out.txt").read_text() == "input seen"


@needs_box
def test_cannot_signal_the_grader(tmp_path):
    sentinel = subprocess.Popen(["sleep", "60"])  # in the test's own process group
    try:
        code = ("import json, os, signal, sys\nout = []\n"
                "for f, a in [(os.kill, sys.argv[1]), (os.killpg, sys.argv[2]),"
                " (os.kill, sys.argv[3]), (os.kill, os.getppid())]:\n"
                "    try:\n        f(int(a), signal.SIGKILL); out.append('sent')\n"
                "    except OSError as e:\n        out.append(e.errno)\n"
                "print(json.dumps(out), flush=True)\nos.kill(-1, signal.SIGKILL)")
        done = run(make_box(tmp_path), code, str(sentinel.pid), str(os.getpgid(0)),
                   str(os.getpid()))
        outcomes = json.loads(done.stdout.strip().splitlines()[0])
        assert outcomes[:3] == [3, 3, 3]  # ESRCH: no such process in the box's pid namespace
        time.sleep(0.2)
        assert sentinel.poll() is None  # still alive, whatever the box tried
    finally:
        sentinel.kill()
        sentinel.wait()
    assert os.getpgid(0) == os.getpgid(os.getpid())  # and so is the test process
