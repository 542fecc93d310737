"""The node agent's local socket, used as analysts use it: real users made
for the test (one not in the socket's group, one in it), a real agent
(`noisy-neighbor serve --socket`) with its probe in the real kernel, and
clients in other processes that hold no BPF privilege."""

from __future__ import annotations

import grp
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
import pytest

import noisy_neighbor as nn
from noisy_neighbor.remote import wire
from noisy_neighbor.testing import AgentProcess, request_loop

pytestmark = pytest.mark.needs_bpf

REPO = Path(__file__).resolve().parents[1]
CPU = (os.cpu_count() or 1) - 1
WORKER = request_loop(work_s=0.001, wait_s=0.001)
#: A stalled client's queue: small, so that it fills within the test.
STREAM_QUEUE = 4


def _reachable_by_all(path: Path) -> bool:
    return all(os.stat(p).st_mode & 0o005 == 0o005 for p in [*path.parents, path])


def _analysts_python(place: Path) -> Path:
    """A Python an analyst would have, with this checkout's packages: a
    virtualenv of an interpreter every user may run, whose one ``.pth``
    line adds the test's own site-packages (where noisy-neighbor is
    installed). The test's interpreter may sit in root's home (pyenv)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [Path(sys.executable).resolve(), Path("/usr/bin") / version]
    base = next((p for p in candidates if p.exists() and _reachable_by_all(p)), None)
    if base is None:
        pytest.fail(f"no {version} that other users may run: tried {candidates}")
    venv = place / "venv"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True)
    ours = next(
        Path(p) for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)
    )
    theirs = venv / "lib" / version / "site-packages"
    (theirs / "noisy_neighbor_checkout.pth").write_text(
        f"import site; site.addsitedir({str(ours)!r})\n"
    )
    return venv / "bin" / "python"


@dataclass
class User:
    name: str
    uid: int
    gid: int
    groups: list[int]
    home: Path
    python: Path

    def run(
        self, code: str, env: dict[str, str], timeout: float = 120
    ) -> subprocess.CompletedProcess:
        """``code`` in an analyst's Python, as this user, with this user's
        groups and nothing of root's."""
        return subprocess.run(
            [str(self.python), "-c", code],
            user=self.uid,
            group=self.gid,
            extra_groups=self.groups,
            cwd=self.home,
            env={
                "PATH": f"{self.python.parent}:/usr/bin:/bin",
                "HOME": str(self.home),
                "PYTHONDONTWRITEBYTECODE": "1",
                **env,
            },
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@dataclass
class Agent:
    socket: str
    group: str
    process: AgentProcess


@pytest.fixture(scope="module")
def place() -> Iterator[Path]:
    """A directory every user can reach (pytest's tmp_path is root's own)."""
    path = Path(f"/run/nn-socket-test-{secrets.token_hex(3)}")
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    if not _reachable_by_all(REPO):
        pytest.fail(f"other users cannot read this checkout ({REPO}): clone it where they can")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def accounts(place: Path) -> Iterator[tuple[str, User, User]]:
    """The socket's group, a user outside it and a user in it; removed after."""
    python = _analysts_python(place)
    suffix = secrets.token_hex(3)
    group, outsider, member = f"nnsock{suffix}", f"nnout{suffix}", f"nnin{suffix}"
    subprocess.run(["groupadd", group], check=True)
    made: list[str] = []
    try:
        users = []
        for name, extra in ((outsider, []), (member, ["-G", group])):
            subprocess.run(
                ["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", *extra, name], check=True
            )
            made.append(name)
            ids = subprocess.run(["id", "-u", name], capture_output=True, text=True, check=True)
            gids = subprocess.run(["id", "-G", name], capture_output=True, text=True, check=True)
            uid, *groups = (int(ids.stdout), *map(int, gids.stdout.split()))
            home = place / name
            home.mkdir(mode=0o700)
            os.chown(home, uid, groups[0])
            users.append(User(name, uid, groups[0], groups[1:], home, python))
        yield group, users[0], users[1]
    finally:
        for name in made:
            subprocess.run(["userdel", name], check=False)
        subprocess.run(["groupdel", group], check=False)


@pytest.fixture(scope="module")
def agent(place: Path, accounts: tuple[str, User, User]) -> Iterator[Agent]:
    group = accounts[0]
    path = str(place / "agent.sock")
    process = AgentProcess(
        "--socket", path, "--socket-group", group, "--stream-queue", str(STREAM_QUEUE)
    )
    try:
        yield Agent(path, group, process)
    finally:
        status, log = process.stop()
    assert status == 0, log
    assert not os.path.exists(path), "the agent left its socket behind"


def test_the_socket_is_the_groups_only(agent: Agent) -> None:
    info = os.stat(agent.socket)
    assert info.st_mode & 0o777 == 0o660
    assert (info.st_uid, info.st_gid) == (0, grp.getgrnam(agent.group).gr_gid)


def test_a_user_outside_the_group_is_refused_with_what_to_do(agent, accounts) -> None:
    _, outsider, _ = accounts
    code = (
        "import noisy_neighbor as nn\n"
        "try:\n"
        "    nn.collect(1, progress=False)\n"
        "except nn.AgentUnavailableError as err:\n"
        "    print(err)\n"
    )
    done = outsider.run(code, {"NN_AGENT_SOCKET": agent.socket})
    assert done.returncode == 0, done.stderr
    # It cannot load a probe, and the agent's socket refuses it; both said,
    # with the command that grants access.
    assert "cannot load a probe" in done.stdout
    assert "refuses you" in done.stdout and "usermod -aG" in done.stdout


def test_a_member_runs_the_quickstart_notebook_and_gets_roots_verdicts(
    agent, accounts, cgroup_factory, cpu_hog
) -> None:
    _, _, member = accounts
    worker = cgroup_factory("worker")
    worker.run(WORKER, cpus=[CPU])
    neighbor = cgroup_factory("neighbor")
    cpu_hog(neighbor, n=2, cpus=[CPU])
    time.sleep(0.5)

    # The quick-start notebook unchanged, and one cell more that prints the
    # verdicts of its collection.
    notebook = nbformat.read(REPO / "notebooks" / "01-quickstart.ipynb", as_version=4)
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            "import json\n"
            "report = collection.report()\n"
            "print('NN-RESULT', json.dumps({'source': collection.source, 'verdicts': {\n"
            "    str(cid): [v.kind, v.culprits[0][0] if v.culprits else None]\n"
            "    for cid, v in report.verdicts.items()}}))\n"
        )
    )
    path = member.home / "quickstart.ipynb"
    nbformat.write(notebook, path)
    os.chown(path, member.uid, member.gid)
    runner = (
        "import nbformat\n"
        "from nbclient import NotebookClient\n"
        f"nb = nbformat.read({str(path)!r}, as_version=4)\n"
        "NotebookClient(nb, timeout=300, kernel_name='python3').execute()\n"
        "out = [o.get('text', '') for o in nb.cells[-1].outputs if o.output_type == 'stream']\n"
        "print(''.join(out))\n"
    )
    done = member.run(runner, {"NN_AGENT_SOCKET": agent.socket}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("NN-RESULT "))
    seen = json.loads(line.removeprefix("NN-RESULT "))
    assert seen["source"] == f"the node agent on {agent.socket}"
    # The agent logged who asked for what.
    assert f"uid {member.uid} (pid " in agent.process.log()
    assert "asked for subscribe" in agent.process.log()

    # Root, directly, on the same workload: the same verdict for the worker,
    # naming the same neighbor (two busy loops pinned beside it hold most of
    # its CPU, so this does not hang on the window's noise).
    direct = nn.collect(3, via="probe", progress=False).report()
    expected = [direct.verdicts[worker.id].kind, direct.verdicts[worker.id].culprits[0][0]]
    assert expected == ["noisy-neighbor", neighbor.id]
    assert seen["verdicts"][str(worker.id)] == expected


def test_programs_through_the_agent_need_their_own_grant(agent, accounts) -> None:
    _, _, member = accounts
    code = (
        "import noisy_neighbor as nn\n"
        "with nn.connect() as client:\n"
        "    try:\n"
        "        client.trace('BEGIN { printf(\"hi\\\\n\"); exit(); }')\n"
        "    except nn.AgentUnavailableError as err:\n"
        "        print(err)\n"
    )
    done = member.run(code, {"NN_AGENT_SOCKET": agent.socket})
    assert done.returncode == 0, done.stderr
    assert "--allow-programs" in done.stdout
    # Root holds every grant; the text is bpftrace's (its exit adds two
    # blank lines, where the maps would be printed).
    with nn.connect(agent.socket) as client:
        assert client.trace('BEGIN { printf("hi\\n"); exit(); }') == "hi\n\n\n"


def _stalled_subscriber(path: str) -> socket.socket:
    """A client that subscribes to every cgroup and then reads nothing."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.connect(path)
    conn.sendall(b'{"op": "subscribe", "cgroups": null}\n')
    return conn


def _drain(conn: socket.socket) -> dict[str, int]:
    """What a stalled client is told once it reads again: its counters."""
    pa = wire.pyarrow()
    conn.settimeout(10)
    reader = pa.ipc.open_stream(conn.makefile("rb"))
    counters: dict[str, int] = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not counters.get("dropped_events"):
        _, custom = reader.read_next_batch_with_custom_metadata()
        counters = wire.counters_of(custom)
    return counters


def test_a_stalled_stream_loses_only_its_own_events(agent, cgroup_factory) -> None:
    # The stalled client subscribes first, to everything, so the streaming
    # probe loads unfiltered once and is never reloaded under the others.
    stalled = _stalled_subscriber(agent.socket)
    worker = cgroup_factory("streamed")
    readers = [nn.connect(agent.socket, stream=True, cgroups=[worker.id]) for _ in range(2)]
    received = [0, 0]

    def take() -> None:
        for i, client in enumerate(readers):
            while (batch := client.next_batch(timeout=0)) is not None:
                received[i] += int(np.count_nonzero(batch.cgroup_id == worker.id))

    try:
        for client in readers:
            client.start()
        # The worker's cgroup exists before its first task: every one of its
        # waits happens while both streams listen.
        worker.run(WORKER, cpus=[CPU])
        worker.run(WORKER, cpus=[CPU])
        ends = time.monotonic() + 4
        while time.monotonic() < ends:
            take()
            time.sleep(0.05)
        worker.kill()  # every wait of the worker is over once its tasks are reaped
        # The agent's own probe counted them all; the streams bring their
        # last batches within a few 50 ms periods. Then compare exactly.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            take()
            counts = [client.histograms()[worker.id].count for client in readers]
            if received >= counts:
                break
            time.sleep(0.2)
        stats = [client.stats() for client in readers]
    finally:
        for client in readers:
            client.close()
    # Each reader got every wait of the worker that the agent's own probe
    # counted (two probes, each exact), and lost nothing.
    assert counts[0] > 100
    assert received == counts
    assert [s["dropped_batch_events"] for s in stats] == [0, 0]
    # The stalled one lost events of its own, counted, and is told so.
    told = _drain(stalled)
    stalled.close()
    assert told["dropped_events"] > 0 and told["dropped_batches"] > 0


def test_a_client_in_another_language_reads_the_wire(agent, cgroup_factory) -> None:
    """Node.js with Apache Arrow's own library, none of this package: the
    wire is Arrow IPC, not a format of ours."""
    client = REPO / "tests" / "clients"
    node = shutil.which("node")
    if node is None or not (client / "node_modules" / "apache-arrow").is_dir():
        pytest.fail("the Node.js client needs node and its packages: run `make deps py-test`")
    worker = cgroup_factory("from-node")
    worker.run(WORKER, cpus=[CPU])
    time.sleep(0.5)
    done = subprocess.run(
        [node, str(client / "read_agent.mjs"), agent.socket, str(worker.id), "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    # The reading named the worker's cgroup with its waits so far, and the
    # stream brought the worker's waits (about 500 a second) and its counters.
    assert seen["reading"][str(worker.id)] > 0
    assert seen["streamed"] > 100
    assert seen["counters"]["dropped_events"] == 0


def test_the_live_view_and_latency_read_a_client_as_a_probe(agent, cgroup_factory, capsys) -> None:
    worker = cgroup_factory("live")
    worker.run(WORKER, cpus=[CPU])
    with nn.connect(agent.socket) as client:
        time.sleep(1)
        hist = client.latency(worker)
        assert hist.count > 0 and hist.cgroup_id == worker.id
        assert client.latency(cgroup_factory("idle")).count == 0  # never waited: empty
    # Outside a notebook the live view prints each interval's table.
    nn.live(nn.connect(agent.socket), interval=0.5, count=2)
    printed = capsys.readouterr().out
    assert printed.count("run-queue latency, ") == 2


def test_a_window_outlives_the_agent_closing_its_connection(agent) -> None:
    """The agent closes connections idle for 10 minutes; a notebook's window
    can be longer, and its next reading comes on a new connection."""
    with nn.connect(agent.socket) as client:
        before = client.histograms()
        client._channel.sock.shutdown(socket.SHUT_RDWR)  # as the agent's idle cut does
        time.sleep(0.2)
        after = client.histograms()
    assert sum(h.count for h in after.values()) >= sum(h.count for h in before.values())
