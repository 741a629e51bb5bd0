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

Each part is applied when the kernel offers it; :func:`apply` answers what was
applied, and the runtime says so at start-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
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


def apply(roots: Iterable[str], files: Iterable[str] = ()) -> list[str]:
    """Apply what the kernel offers; the list of what was applied."""
    applied = []
    roots = list(roots)
    lib = load_libseccomp()
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
