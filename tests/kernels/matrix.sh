#!/usr/bin/env bash
# make kernel-matrix: the real-kernel tests that matter, inside the kernels
# fleets run. Boots Debian's cloud kernels (fetched with apt-get download and
# unpacked, never installed) under qemu with TCG (this machine's nested KVM
# cannot boot stock kernels), with the host's root shared over virtiofs, so
# the guest runs this checkout and its venv as they are; prints, per kernel,
# the plan (method, cgroup walk), the accuracy against schedstat and the
# tests' result.
#
#   NN_KERNELS="6.1 6.12"   kernel series to boot (default both)
#   NN_MATRIX_TESTS=...     pytest ids, comma-separated (default: below)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=$repo/.cache/kernel-matrix
kernels=${NN_KERNELS:-6.1 6.12}
# Load and attach for both methods with accuracy against schedstat, streaming,
# attribution, plugins, a bpftrace script (kfunc and kprobe, and kprobe taken
# as fentry, which this project's own VM cannot load), and nothing left loaded. User space runs 15-25x
# slower under TCG: these take about 5 minutes per kernel.
default_tests=(
  "tests/test_runq_probe.py::test_per_cgroup_wait_matches_schedstat"
  "tests/test_runq_probe.py::test_no_program_of_ours_stays_loaded_after_close"
  "tests/test_stream.py::test_streamed_events_reconcile_with_histograms"
  "tests/experiments/test_neighbor_experiment.py"
  "tests/test_plugin.py::test_ring_buffer_records_are_decoded_into_typed_columns"
  "tests/test_script_runtime.py::test_reads_counted_through_fentry_and_kprobe_alike"
  "tests/test_script_runtime.py::test_each_exec_of_a_known_binary_is_counted_once"
)
tests=${NN_MATRIX_TESTS:-$(IFS=,; echo "${default_tests[*]}")}

# qemu 7.2 with its virtiofsd, and the libraries it needs that a plain
# machine lacks, unpacked beside each other (installing qemu-system-x86 can
# conflict with a backported qemu-utils).
qemu_packages=(qemu-system-x86 qemu-system-common qemu-system-data seabios libcapstone4
  libfdt1 libpmem1 librdmacm1 libibverbs1 libvdeplug2 libndctl6 libdaxctl1 libnl-route-3-200
  libnl-3-200)

package_for() {  # the newest Debian cloud kernel package of a series
  local pattern
  case "$1" in
    6.1) pattern='^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' ;;
    *) pattern="^linux-image-${1//./\\.}\\.[0-9]+\\+deb[0-9]+-cloud-amd64\$" ;;
  esac
  apt-cache search --names-only "$pattern" | awk '{print $1}' | sort -V | tail -1
}

mkdir -p "$cache/debs" "$cache/qemu"
cd "$cache/debs"
[ -n "$(package_for 6.1)" ] || apt-get update -qq
wanted=("${qemu_packages[@]}")
for series in $kernels; do
  package=$(package_for "$series")
  [ -n "$package" ] || { echo "no Debian cloud kernel package for $series" >&2; exit 1; }
  wanted+=("$package")
done
for package in "${wanted[@]}"; do
  ls "${package}"_*.deb >/dev/null 2>&1 || apt-get download -qq "$package" 2>/dev/null
done
if [ ! -f "$cache/qemu/usr/share/seabios/bios-256k.bin" ]; then
  for package in "${qemu_packages[@]}"; do dpkg-deb -x "$package"_*.deb "$cache/qemu"; done
fi
LD_LIBRARY_PATH=$(find "$cache/qemu" -name '*.so*' -printf '%h\n' | sort -u | paste -sd:)
export LD_LIBRARY_PATH
qemu=$cache/qemu/usr/bin/qemu-system-x86_64
virtiofsd=$cache/qemu/usr/lib/qemu/virtiofsd
if missing=$(ldd "$qemu" "$virtiofsd" | grep 'not found'); then
  echo "qemu needs libraries this script does not fetch:" >&2; echo "$missing" >&2; exit 1
fi

# Boots one kernel with the tests; its serial console goes to $4.
boot() {
  local version=$1 root=$2 initrd=$3 log=$4 socket virtiofsd_pid
  socket=$cache/$version.virtiofs.sock
  rm -f "$socket"
  # chroot sandbox: the default namespace sandbox fails with pivot_root EBUSY.
  "$virtiofsd" --socket-path="$socket" -o source=/ -o sandbox=chroot -o cache=none \
    >"$cache/$version.virtiofsd.log" 2>&1 &
  virtiofsd_pid=$!
  for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
  echo "== $version: booting under qemu (TCG); serial console in $log"
  # No display, no network: the serial console is the only way out.
  timeout 1200 "$qemu" -accel tcg -cpu max -smp 2 -m 4G -nographic -no-reboot \
    -vga none -nic none \
    -L "$cache/qemu/usr/share/qemu" -L "$cache/qemu/usr/share/seabios" \
    -kernel "$root/boot/vmlinuz-$version" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet nn.script=$repo/tests/kernels/guest.sh nn.repo=$repo nn.tests=$tests" \
    -object memory-backend-memfd,id=mem,size=4G,share=on -numa node,memdev=mem \
    -chardev socket,id=vfs,path="$socket" -device vhost-user-fs-pci,chardev=vfs,tag=host \
    </dev/null >"$log" 2>&1 || true
  kill "$virtiofsd_pid" 2>/dev/null || true
  wait "$virtiofsd_pid" 2>/dev/null || true
}

status=0
summary=()
for series in $kernels; do
  package=$(package_for "$series")
  version=${package#linux-image-}
  root=$cache/$version
  if [ ! -f "$root/boot/vmlinuz-$version" ]; then
    dpkg-deb -x "$package"_*.deb "$root"
  fi
  # The initramfs: busybox and the modules the share needs, uncompressed
  # (busybox's insmod reads plain .ko files only).
  initrd=$root/initrd.cpio.gz
  if [ ! -f "$initrd" ]; then
    staging=$root/initramfs
    rm -rf "$staging"
    mkdir -p "$staging"/{bin,proc,sys,dev,host,modules}
    cp /usr/bin/busybox "$staging/bin/busybox"
    cp "$repo/tests/kernels/init" "$staging/init"
    : > "$staging/modules/order"
    add_module() {  # a module after those it depends on (from modinfo)
      local found dep
      grep -qx "$1" "$staging/modules/order" && return
      found=$(find "$root/lib/modules" -name "$1.ko*" | head -1)
      [ -n "$found" ] || return 0  # built in
      for dep in $(modinfo -F depends "$found" | tr ',' ' '); do add_module "$dep"; done
      case "$found" in
        *.xz) xz -dc "$found" > "$staging/modules/$1.ko" ;;
        *) cp "$found" "$staging/modules/$1.ko" ;;
      esac
      echo "$1" >> "$staging/modules/order"
    }
    for module in virtio_pci virtiofs; do add_module "$module"; done
    python3 "$repo/tests/kernels/initramfs.py" "$staging" "$initrd"
  fi
  log=$cache/$version.log
  started=$(date +%s)
  # Under TCG a guest kernel now and then dies patching its own text (an
  # "Oops: int3" in __schedule as a tracer's first attach enables the
  # sched_switch tracepoint: seen once in ~10 boots of 6.12, never on
  # hardware). Such a boot is booted once more, and the summary says so; its
  # console log is kept beside the other.
  # A boot that hung (no result by the 1200 s guard, or the guest's own 900 s
  # cut, seen once in CI on 6.1 where ten boots here passed in ~300 s) is
  # booted once more too, its console (with the stacks the guest dumped)
  # kept and named in the summary: a second hang fails the run.
  crashed=""
  for attempt in 1 2; do
    boot "$version" "$root" "$initrd" "$log"
    result=$(sed -n 's/^NN-MATRIX-RESULT //p' "$log" | tr -d '\r')
    if [ "$attempt" = 2 ]; then break; fi
    if [ -z "$result" ] && grep -aqE 'Kernel panic|Oops:' "$log"; then
      mv "$log" "$cache/$version.crashed.log"
      crashed=" after a guest kernel crash under emulation (see $version.crashed.log)"
      echo "== $version: the guest kernel crashed (not a test result); booting once more"
    elif [ -z "$result" ] || [ "$result" = 124 ]; then
      mv "$log" "$cache/$version.hung.log"
      crashed=" after a hung boot (see $version.hung.log)"
      echo "== $version: the guest hung (no result); its console's end, then one more boot:"
      tr -d '\r' < "$cache/$version.hung.log" | tail -40 | sed 's/^/   | /'
    else
      break
    fi
  done
  seconds=$(( $(date +%s) - started ))
  plan=$(sed -n 's/^NN-MATRIX-PLAN //p' "$log" | tr -d '\r')
  # The worst error of each method over its placements (bench/accuracy.py's
  # last column).
  accuracy=$(tr -d '\r' < "$log" | awk '/^NN-MATRIX-ACCURACY (sched_info|wakeup) / {
      e = $NF; sub(/%/, "", e); if (!($2 in w) || e + 0 > w[$2]) w[$2] = e + 0 }
    END { printf "sched_info %.4f%%, wakeup %.4f%%", w["sched_info"], w["wakeup"] }')
  result=$(sed -n 's/^NN-MATRIX-RESULT //p' "$log" | tr -d '\r')
  grep -aE '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' "$log" | tail -1 || true
  if [ "$result" = 0 ]; then
    verdict="passed$crashed"
  else
    verdict="FAILED (${result:-no result})$crashed"
    status=1
    # CI keeps only what is printed: the guest's last words, with the test
    # that was running and any stacks the guest's faulthandler dumped.
    echo "== $version: the end of its console ($log):"
    tr -d '\r' < "$log" | tail -60 | sed 's/^/   | /'
  fi
  summary+=("$version | $plan | $accuracy | $verdict | ${seconds}s")
done
echo
echo "kernel | plan | accuracy against schedstat | tests | time"
printf '%s\n' "${summary[@]}"
exit $status
