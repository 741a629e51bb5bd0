"""Kernel-enforced confinement of a worker process (Linux), applied by the
worker itself before any consultant code runs. Unlike the audit hook, nothing
the process does afterwards can lift it.

* **Landlock** (unprivileged LSM, Linux >= 5.13): reads only below the allowed
  roots, writes nowhere (but ``/dev/null``); with ABI >= 4 no TCP connect or
  bind; with ABI >= 6 no signals to processes outside the worker and no
  abstract UNIX sockets.
* **seccomp** (through libseccomp when installed): no sockets at all (so no
  UNIX socket to a local database either), no ``execve``, no new processes
  (``fork``, ``clone`` without ``CLONE_THREAD``), no ``ptrace``, no reading or
  writing other processes' memory, no ``kill`` of another process, no
  ``io_uring``, ``bpf``, namespaces or mounts.

* **a mount namespace** (where the kernel lets the worker make a user namespace,
  as root or, where unprivileged user namespaces are allowed, as any user): the
  worker's file system becomes a read-only tmpfs holding only the allowed roots
  and files, bind-mounted at their own paths; the server's view is gone
  (``pivot_root``). Landlock has no right for ``stat`` and seccomp cannot see
  paths: this is what makes ``os.stat``, ``os.path.exists``, ``readlink`` of a
  path outside the roots answer "no such file" instead of the truth.

Each part is applied when the kernel offers it; :func:`apply` answers what was
applied, and the runtime says so at start-up.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import platform
from collections.abc import Iterable

_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_PR_SET_NO_NEW_PRIVS = 38
_RULE_PATH_BENEATH = 1

_EXECUTE = 1 << 0
_WRITE_FILE = 1 << 1
_READ_FILE = 1 << 2
_READ_DIR = 1 << 3
#: every filesystem right, by ABI version (index = ABI)
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_NET_BIND_TCP = 1 << 0
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX = 1 << 0
_SCOPE_SIGNAL = 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def landlock(roots: Iterable[str], files: Iterable[str]) -> str | None:
    """Read-only access below ``roots`` and to ``files`` (read-write for
    /dev/null), nothing else; None when the kernel has no Landlock."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return None
    fs_all = _FS_BY_ABI[max(k for k in _FS_BY_ABI if k <= abi)]
    attr = _RulesetAttr(fs_all, 0, 0)
    size = 8
    parts = ["fs"]
    if abi >= 4:
        attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP
        size = 16
        parts.append("tcp")
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL
        size = 24
        parts.append("signals")
    ruleset = libc.syscall(
        _SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)
    )
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        read_dir = _READ_FILE | _READ_DIR | _EXECUTE
        for path, access in [
            *((r, read_dir) for r in roots),
            *((f, _READ_FILE) for f in files),
            (os.devnull, _READ_FILE | _WRITE_FILE),
        ]:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(path):
                    access &= _READ_FILE | _WRITE_FILE | _EXECUTE
                rule = _PathBeneathAttr(access, fd)
                if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0):
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0):
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return f"landlock v{abi} ({', '.join(parts)})"


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


_SCMP_ACT_ALLOW = 0x7FFF0000
_CMP_NE = 1
_CMP_MASKED_EQ = 7
_CLONE_THREAD = 0x00010000

DENIED_SYSCALLS = (
    "socket",
    "socketpair",
    "execve",
    "execveat",
    "fork",
    "vfork",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "tkill",
    "io_uring_setup",
    "bpf",
    "perf_event_open",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
)


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def load_libseccomp() -> ctypes.CDLL | None:
    """libseccomp, loaded while the library can still be found and read."""
    name = ctypes.util.find_library("seccomp")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def seccomp(lib: ctypes.CDLL | None) -> str | None:
    """Install the syscall filter; None without libseccomp."""
    if lib is None:
        return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        return None
    deny = _errno_action(errno.EPERM)

    def rule(action: int, syscall: str, *cmps: _ArgCmp) -> None:
        nr = lib.seccomp_syscall_resolve_name(syscall.encode())
        if nr < 0:
            return  # not on this architecture
        array = (_ArgCmp * len(cmps))(*cmps) if cmps else None
        if lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), array):
            raise OSError(f"seccomp rule for {syscall} failed")

    try:
        for syscall in DENIED_SYSCALLS:
            rule(deny, syscall)
        # threads are clone(CLONE_THREAD ...); new processes are not
        rule(deny, "clone", _ArgCmp(0, _CMP_MASKED_EQ, _CLONE_THREAD, 0))
        rule(_errno_action(errno.ENOSYS), "clone3")  # glibc falls back to clone
        me = os.getpid()
        rule(deny, "kill", _ArgCmp(0, _CMP_NE, me, 0))
        rule(deny, "tgkill", _ArgCmp(0, _CMP_NE, me, 0))
        if lib.seccomp_load(ctx):
            raise OSError("seccomp_load failed")
    finally:
        lib.seccomp_release(ctx)
    return "seccomp"


_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_NOATIME = 1024
_MS_NODIRATIME = 2048
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_MS_RELATIME = 1 << 21
_ST_RELATIME = 4096
_MNT_DETACH = 2
#: pivot_root has no libc wrapper: its number, by architecture
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _enter_namespaces(libc: ctypes.CDLL) -> None:
    """A user namespace (the server's uid mapped to itself) and a mount
    namespace of the worker's own; root without user namespaces gets the mount
    namespace alone."""
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS) != 0:
        if uid != 0:
            _check(-1, "unshare(CLONE_NEWUSER|CLONE_NEWNS)")
        _check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        return
    # from inside the new namespace only one's own ids can be mapped (root
    # included): files of other users show as "nobody's", which the worker
    # reads only where their mode lets anyone read them
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1\n")
    _write("/proc/self/gid_map", f"{gid} {gid} 1\n")


def _bind(libc: ctypes.CDLL, top: str, real: str, read_only: bool = True) -> None:
    """Show ``real`` (a resolved directory or file) at the same path below ``top``."""
    target = top + real
    if os.path.isdir(real):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    _check(libc.mount(real.encode(), target.encode(), None, _MS_BIND | _MS_REC, None), real)
    if read_only:
        # a remount in a user namespace must keep the flags the source is locked with
        found = os.statvfs(real).f_flag
        keep = found & (_MS_NOSUID | _MS_NODEV | _MS_NOEXEC | _MS_NOATIME | _MS_NODIRATIME)
        keep |= _MS_RELATIME if found & _ST_RELATIME else 0
        flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY | keep
        # writes are Landlock's to refuse too: a remount the kernel declines is not fatal
        libc.mount(None, target.encode(), None, flags, None)


def _alias(top: str, path: str) -> None:
    """A path given through a symbolic link keeps working: the link, below ``top``."""
    given, real = os.path.abspath(path), os.path.realpath(path)
    if given != real and not os.path.lexists(top + given):
        os.makedirs(os.path.dirname(top + given), exist_ok=True)
        os.symlink(real, top + given)


def _outermost(paths: Iterable[str]) -> list[str]:
    """The existing ``paths``, resolved, not below another one (a recursive bind
    shows those)."""
    kept: list[str] = []
    for path in sorted({os.path.realpath(p) for p in paths if os.path.exists(p)}):
        if not any(path == k or path.startswith(k.rstrip(os.sep) + os.sep) for k in kept):
            kept.append(path)
    return kept


def private_view(roots: Iterable[str], files: Iterable[str]) -> str | None:
    """Replace the worker's view of the file system by a read-only tmpfs showing
    only ``roots``, ``files`` (and ``/dev/null``, writable), each at its own path;
    None when the kernel does not allow it here (no user namespaces for this
    user, an unknown architecture), and the server's view is then unchanged."""
    pivot = _SYS_PIVOT_ROOT.get(platform.machine())
    top = os.getcwd()
    given = [p for p in [*roots, *files] if p and os.path.exists(p)]
    dirs = _outermost(p for p in given if os.path.isdir(p))
    if pivot is None or any(top == d or top.startswith(d + os.sep) for d in dirs):
        return None
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    try:
        _enter_namespaces(libc)
        # nothing done here travels back to the server's namespace
        _check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "private /")
        options = b"mode=0755,size=1m"
        _check(libc.mount(b"tmpfs", top.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, options), top)
        for real in dirs:
            _bind(libc, top, real)
        for path in given:
            real = os.path.realpath(path)
            if not os.path.isdir(real):
                _bind(libc, top, real)
            _alias(top, path)
        _bind(libc, top, os.devnull, read_only=False)
        os.chdir(top)
        _check(libc.syscall(pivot, b".", b"."), "pivot_root")
        _check(libc.umount2(b".", _MNT_DETACH), "detach the server's view")
        os.chdir("/")
        flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV
        libc.mount(None, b"/", None, flags, None)
    except OSError:
        # part-way: what was mounted is this worker's alone; the stat guard stands in
        with contextlib.suppress(OSError):
            os.chdir(top)
        return None
    return "mount namespace"


def apply(roots: Iterable[str], files: Iterable[str] = ()) -> list[str]:
    """Apply what the kernel offers; the list of what was applied. The mount
    namespace comes first: Landlock and seccomp then forbid mounting."""
    applied = []
    roots, files = list(roots), list(files)
    lib = load_libseccomp()  # before the view hides the library's directory
    view = private_view(roots, files)
    if view:
        applied.append(view)
    try:
        done = landlock(roots, files)
    except OSError:
        done = None
    if done:
        applied.append(done)
    try:
        done = seccomp(lib)
    except OSError:
        done = None
    if done:
        applied.append(done)
    return applied
