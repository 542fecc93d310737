"""Packs a directory into a gzipped initramfs (the kernel's "newc" cpio
format), so the kernel matrix needs no cpio binary.

    python initramfs.py DIR OUT.cpio.gz
"""

from __future__ import annotations

import gzip
import os
import stat
import sys


def _entry(name: str, st: os.stat_result | None, data: bytes, ino: int) -> bytes:
    mode = st.st_mode if st else 0
    fields = [ino, mode, 0, 0, st.st_nlink if st else 1, 0, len(data), 0, 0, 0, 0]
    encoded = name.encode() + b"\0"
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    header += b"%08X" % len(encoded) + b"%08X" % 0
    out = header + encoded
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out


def pack(directory: str) -> bytes:
    parts = []
    ino = 1
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            path = os.path.join(root, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                data = os.readlink(path).encode()
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    data = f.read()
            else:
                data = b""
            parts.append(_entry(os.path.relpath(path, directory), st, data, ino))
            ino += 1
    parts.append(_entry("TRAILER!!!", None, b"", 0))
    return b"".join(parts)


if __name__ == "__main__":
    source, target = sys.argv[1:3]
    with gzip.open(target, "wb", compresslevel=1) as out:
        out.write(pack(source))
