#!/bin/sh
# Captures the fixtures of tests/test_bpftrace_output.py and
# tests/test_bpftrace_printf.py from the real bpftrace (Debian's 0.17.0):
#   sudo tests/data/bpftrace/capture.sh
# Each PROGRAM.bt gives PROGRAM.txt (stdout of `bpftrace PROGRAM.bt`) and,
# for the JSON cases, PROGRAM.json (stdout of `bpftrace -f json PROGRAM.bt`).
# Stacks and clocks differ from run to run: the tests copy the frames of the
# capture they compare with.
set -eu
cd "$(dirname "$0")"
bpftrace --version | grep -q 'v0.17.0'
for prog in *.bt; do
  name=${prog%.bt}
  bpftrace "$prog" > "$name.txt" 2>/dev/null || echo "bpftrace $prog failed" >&2
done
for name in every_kind hist_buckets lhist_buckets key_order value_order top_div ties \
            zero_clear print_values special_maps json_escape json_quirks map_names; do
  bpftrace -f json "$name.bt" > "$name.json" 2>/dev/null || echo "bpftrace -f json $name.bt failed" >&2
done
# One printf error per program: "program<TAB>message", the message as
# bpftrace prints it after "ERROR: ".
while IFS= read -r program; do
  message=$(bpftrace --unsafe -e "$program" 2>&1 | sed -n 's/^stdin:[^ ]*: ERROR: //p' | head -1)
  printf '%s\t%s\n' "$program" "$message"
done < printf_errors.in > printf_errors.tsv
