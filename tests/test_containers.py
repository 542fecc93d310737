"""Real containers by their names: Debian's dockerd, started by the test with
its own data root and socket (no systemd, no registry, no network), and
Debian's podman with its own storage, each run three containers from a local
busybox image; the report names them as the user did and gives their
verdicts."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import noisy_neighbor as nn
from noisy_neighbor.names.runtimes import ContainerNames, DockerEngineApi

pytestmark = pytest.mark.needs_bpf

DOCKERD = shutil.which("dockerd")
# Debian's client, which matches its daemon (another may shadow it on PATH).
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else shutil.which("docker")
BUSYBOX = shutil.which("busybox")
PODMAN = shutil.which("podman")


class Docker:
    """A dockerd of the test's own: data root, exec root and socket under a
    temporary directory; stopped and cleaned at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.data_root = root / "data"

    def __call__(self, *args: str, stdin: bytes | None = None) -> str:
        assert DOCKER is not None
        done = subprocess.run(
            [DOCKER, "-H", f"unix://{self.socket}", *args],
            input=stdin,
            capture_output=True,
            check=True,
            timeout=120,
        )
        return done.stdout.decode().strip()


def _busybox_image() -> bytes:
    """A tar of a one-binary root filesystem: busybox and its applets."""
    assert BUSYBOX is not None
    buffer = Path(os.environ.get("TMPDIR", "/tmp")) / f"nn-busybox-{os.getpid()}.tar"
    with tarfile.open(buffer, "w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in ("sh", "sleep", "true"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    data = buffer.read_bytes()
    buffer.unlink()
    return data


@pytest.fixture
def docker(tmp_path_factory) -> Iterator[Docker]:
    if not (DOCKERD and DOCKER and BUSYBOX):
        # Required, like the BPF tests: `make test` installs them first.
        pytest.fail(
            "needs dockerd, docker and busybox-static: apt-get install docker.io busybox-static"
        )
    root = tmp_path_factory.mktemp("dockerd")
    daemon = Docker(root)
    before = set(glob.glob("/sys/fs/cgroup/**/docker", recursive=True))
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 (closed at teardown)
    process = subprocess.Popen(
        [
            DOCKERD,
            "--data-root",
            str(daemon.data_root),
            "--exec-root",
            str(root / "exec"),
            "--pidfile",
            str(root / "dockerd.pid"),
            "-H",
            f"unix://{daemon.socket}",
            # No network here: no bridge, no iptables.
            "--iptables=false",
            "--ip-forward=false",
            "--bridge=none",
            "--containerd-namespace",
            f"nn-test-{os.getpid()}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60  # bounds a hang, not a speed
        while True:
            with contextlib.suppress(subprocess.CalledProcessError):
                daemon("version", "--format", "{{.Server.Version}}")
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dockerd did not start: {(root / 'dockerd.log').read_text()[-2000:]}")
            time.sleep(0.2)
        daemon("import", "-", "nn-busybox:latest", stdin=_busybox_image())
        yield daemon
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            ids = daemon("ps", "-aq").split()
            if ids:
                daemon("rm", "-f", *ids)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        # dockerd leaves its parent cgroups behind in every hierarchy.
        for directory in set(glob.glob("/sys/fs/cgroup/**/docker", recursive=True)) - before:
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        shutil.rmtree(root, ignore_errors=True)


HOG = ["sh", "-c", "while :; do :; done"]
# Short bursts of work and short sleeps: latency-sensitive.
WEB = ["sh", "-c", "while :; do i=0; while [ $i -lt 300 ]; do i=$((i+1)); done; sleep 0.001; done"]


def _run_the_scenario(run) -> dict[str, str]:
    """A latency-sensitive container and a CPU hog pinned to one CPU, and a
    hog capped at 0.2 CPU on another; ``run(name, options, command)``
    starts one and returns its id."""
    cpus = sorted(os.sched_getaffinity(0))
    shared, other = str(cpus[-1]), str(cpus[0])
    # The hogs weigh 8 times a task of the root cgroup, so on a busy machine
    # (a build, say) the hog still takes most of the shared CPU and the capped
    # one waits mostly for its quota, not behind the machine's other work.
    heavy = ["--cpu-shares", "8192"]
    return {
        "hog": run("hog", [*heavy, "--cpuset-cpus", shared], HOG),
        "web-victim": run("web-victim", ["--cpuset-cpus", shared], WEB),
        "capped": run("capped", [*heavy, "--cpus", "0.2", "--cpuset-cpus", other], HOG),
    }


def _report_names_them(ids: dict[str, str], image: str, runtime: str) -> None:
    """Collects, then checks the report names each container as the user did,
    with its verdict: the victim behind the hog, the capped one throttled."""
    with nn.RunqProbe(attribution=True) as probe:
        time.sleep(3.0)
    report = probe.report()
    hists = probe.histograms()
    by_container = {
        h.info.container_id: h for h in hists.values() if h.info and h.info.container_id
    }
    for name, container_id in ids.items():
        info = by_container[container_id].info
        assert info is not None
        assert (info.container_name, info.image, info.runtime) == (name, image, runtime)
        assert info.display_name == name
    victim = report.verdict(by_container[ids["web-victim"]].cgroup_id)
    assert victim.kind == "noisy-neighbor", str(report)
    assert report.name_of(victim.culprits[0][0]) == "hog", str(report)
    capped = report.verdict(by_container[ids["capped"]].cgroup_id)
    assert capped.kind == "self-throttled", str(report)
    text = str(report)
    assert "web-victim" in text and "capped" in text and f"{runtime} " not in text


def test_the_report_names_real_containers_and_their_verdicts(docker, monkeypatch) -> None:
    monkeypatch.setenv("NN_DOCKER_ROOT", str(docker.data_root))
    image = "nn-busybox:latest"

    def run(name: str, options: list[str], command: list[str]) -> str:
        docker("run", "-d", "--name", name, *options, image, *command)
        return docker("inspect", "-f", "{{.Id}}", name)

    ids = _run_the_scenario(run)
    # The Engine API on the daemon's socket names them too (for an agent that
    # sees the socket but not the data root).
    api = DockerEngineApi(str(docker.socket))
    assert api.lookup(ids["web-victim"]) == ContainerNames(name="web-victim", image=image)
    assert api.lookup("f" * 64) is None
    _report_names_them(ids, image, "docker")


class Podman:
    """Podman with a storage root and run root of the test's own; the cgroupfs
    manager (there is no systemd here)."""

    def __init__(self, root: Path) -> None:
        self.storage = root / "storage"
        self.runroot = root / "run"

    def __call__(self, *args: str) -> str:
        assert PODMAN is not None
        done = subprocess.run(
            [
                PODMAN,
                "--cgroup-manager=cgroupfs",
                "--root",
                str(self.storage),
                "--runroot",
                str(self.runroot),
                *args,
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )
        return done.stdout.decode().strip()


@pytest.fixture
def podman(tmp_path_factory) -> Iterator[Podman]:
    if not (PODMAN and BUSYBOX):
        pytest.fail("needs podman and busybox-static: apt-get install podman busybox-static")
    root = tmp_path_factory.mktemp("podman")
    runtime = Podman(root)
    before = set(glob.glob("/sys/fs/cgroup/**/libpod_parent", recursive=True))
    try:
        tar = root / "busybox.tar"
        tar.write_bytes(_busybox_image())
        runtime("import", str(tar), "nn-busybox:latest")
        yield runtime
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            runtime("rm", "-f", "-t", "0", "--all")
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            runtime("system", "reset", "-f")  # unmounts and empties its storage
        # Podman leaves its parent cgroups (and conmon's, below them) behind
        # in every hierarchy: removed deepest first.
        for directory in set(glob.glob("/sys/fs/cgroup/**/libpod_parent", recursive=True)) - before:
            for below, _, _ in sorted(os.walk(directory), key=lambda w: -len(w[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(below)
        shutil.rmtree(root, ignore_errors=True)


def test_podman_containers_are_named_too(podman, monkeypatch) -> None:
    monkeypatch.setenv("NN_CONTAINERS_STORAGE", str(podman.storage))
    image = "localhost/nn-busybox:latest"
    # Podman asks for more open files and processes than this machine's hard
    # limits allow (runc then fails with "error setting rlimit type 7");
    # containers here get small explicit limits.
    limits = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]

    def run(name: str, options: list[str], command: list[str]) -> str:
        return podman("run", "-d", "--name", name, *limits, *options, image, *command)

    _report_names_them(_run_the_scenario(run), image, "podman")
