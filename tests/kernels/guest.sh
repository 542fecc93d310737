#!/bin/sh
# Runs in the kernel-matrix guest as PID 1, on the host's root filesystem
# (shared read-write over virtiofs): mounts what a machine has, with cgroup2
# at /sys/fs/cgroup (the pure v2 layout most production hosts use), runs the
# real-kernel tests chosen by the host, and powers off. The host reads the
# result from the serial console.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs shm /dev/shm
mount -t tmpfs run /run
# Scratch space of the guest's own, not over /tmp: the checkout under test
# may live there (a CI clone does).
mkdir -p /run/tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
for opt in $(cat /proc/cmdline); do
  case "$opt" in
    nn.repo=*) repo=${opt#nn.repo=} ;;
    nn.tests=*) tests=$(echo "${opt#nn.tests=}" | tr ',' ' ') ;;
  esac
done
echo "NN-MATRIX-KERNEL $(uname -r)"
cd "$repo" || exit 1
export HOME=/run/tmp TMPDIR=/run/tmp PYTHONDONTWRITEBYTECODE=1 NN_REQUIRE_BPF=1
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
.venv/bin/python -c 'import noisy_neighbor as nn; p = nn._native.runq_plan("auto"); print("NN-MATRIX-PLAN", p.method, p.programs, "rcu_kfuncs" if p.rcu_kfuncs else "core_reads")'
.venv/bin/python bench/accuracy.py --runs 1 --seconds 2 2>&1 | sed 's/^/NN-MATRIX-ACCURACY /'
# A test that hangs must still end in a result the host can read: each
# test's name is printed as it starts (-v), a test still running after 240 s
# dumps every thread's stack (faulthandler), and the whole run is cut at
# 900 s, well inside the host's 1200 s guard (the tests take ~200 s here).
# shellcheck disable=SC2086 (one test id per word)
timeout -s INT -k 30 900 .venv/bin/python -m pytest -v -p no:cacheprovider --color=no \
  -o addopts="" -o faulthandler_timeout=240 $tests
echo "NN-MATRIX-RESULT $?"
sync
echo o > /proc/sysrq-trigger
