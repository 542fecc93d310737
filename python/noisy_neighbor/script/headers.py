"""Macros from C headers, for the scripts that ``#include`` them (or name
them with ``--include``): clang's preprocessor lists every macro the headers
define, and those whose value is a number (``EPERM``, ``AF_INET``) become
constants of the script, as bpftrace makes them.

Kernel-internal headers (``<linux/sched.h>`` as the kernel has it, not the
UAPI copy) are rarely installed, so the constants the bundled tools take from
them are known here too, at the lowest priority: ``TASK_RUNNING`` is 0 even
where no header says so."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

__all__ = ["KERNEL_MACROS", "header_macros"]

#: include/linux/sched.h, include/linux/socket.h: what bpftrace's tools name.
KERNEL_MACROS = {
    "TASK_RUNNING": "0",
    "TASK_INTERRUPTIBLE": "1",
    "TASK_UNINTERRUPTIBLE": "2",
    "__TASK_STOPPED": "4",
    "__TASK_TRACED": "8",
    "EXIT_DEAD": "16",
    "EXIT_ZOMBIE": "32",
    "TASK_PARKED": "64",
    "TASK_DEAD": "128",
    "TASK_WAKEKILL": "256",
    "TASK_WAKING": "512",
    "TASK_NOLOAD": "1024",
    "TASK_NEW": "2048",
    "AF_UNSPEC": "0",
    "AF_UNIX": "1",
    "AF_INET": "2",
    "AF_INET6": "10",
    "AF_NETLINK": "16",
    "AF_PACKET": "17",
}
_NUMBER = re.compile(r"\(?\s*-?\s*(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\s*\)?")
#: How long clang may take to list a header's macros.
_TIMEOUT_S = 30


class HeaderNotFound(Exception):
    """A header the script includes does not exist; the text is clang's."""


def header_macros(includes: list[str], clang: str = "clang") -> dict[str, str]:
    """Numeric macros the headers define. ``includes`` as written
    (``<errno.h>``, ``"my.h"``, or a bare ``errno.h`` from --include)."""
    if not includes:
        return {}
    lines = []
    for include in includes:
        spelled = include if include[:1] in '<"' else f"<{include}>"
        lines.append(f"#include {spelled}")
    with tempfile.TemporaryDirectory(prefix="nn-headers-") as tmp:
        source = Path(tmp) / "headers.c"
        source.write_text("\n".join(lines) + "\n")
        try:
            result = subprocess.run(
                [clang, "-E", "-dM", "-x", "c", str(source)],
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise HeaderNotFound(f"could not read the included headers: {err}") from None
    if result.returncode != 0:
        first = next((line for line in result.stderr.splitlines() if "error" in line), "")
        message = first.split("error:", 1)[-1].strip() or result.stderr.strip()
        raise HeaderNotFound(message)
    macros: dict[str, str] = {}
    for line in result.stdout.splitlines():
        parts = line.split(None, 2)
        is_value = len(parts) == 3 and parts[0] == "#define" and "(" not in parts[1]
        if is_value and _NUMBER.fullmatch(parts[2].strip()):
            macros[parts[1]] = parts[2].strip().rstrip("uUlL)").lstrip("(") or parts[2]
    return macros
