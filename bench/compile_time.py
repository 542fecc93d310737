"""How long compiling a small plugin from source takes, with and without the
precompiled vmlinux.h: each run compiles new sources (no object cache hit)
into a fresh cache, so its first compile also builds the precompiled header.

    .venv/bin/python bench/compile_time.py --runs 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from noisy_neighbor.host.compile import compile_source

#: A counter of context switches: as small as a plugin gets.
SOURCE = """#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
u64 switches;
SEC("tp_btf/sched_switch") int on_switch(u64 *ctx)
{ __sync_fetch_and_add(&switches, %d); return 0; }
char LICENSE[] SEC("license") = "GPL";
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="compiles per setting")
    args = parser.parse_args()
    for pch in ("0", "1"):
        os.environ["NN_CLANG_PCH"] = pch
        with tempfile.TemporaryDirectory() as cache:
            os.environ["NN_CACHE_DIR"] = cache
            seconds = []
            for run in range(args.runs):
                start = time.perf_counter()
                compile_source(SOURCE % (run + 1), name="switches")
                seconds.append(time.perf_counter() - start)
        print(
            f"precompiled vmlinux.h {'on ' if pch == '1' else 'off'}: first {seconds[0]:.3f} s, "
            f"median of the rest {statistics.median(seconds[1:]):.3f} s"
        )


if __name__ == "__main__":
    main()
