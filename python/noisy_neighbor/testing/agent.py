"""``noisy-neighbor serve`` as a child process, for tests and benchmarks of
the agent: started on a free loopback port, scraped over HTTP, stopped with
SIGTERM as a service manager would."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
import urllib.request

__all__ = ["AgentProcess"]


class AgentProcess:
    """The agent with ``args`` on ``127.0.0.1:0``; ``url`` is where it
    listens (the port it was given is in its first line of output)."""

    def __init__(self, *args: str) -> None:
        # Its log goes to a file, not a pipe: a pipe nobody reads fills up
        # (64 KiB, a few hundred socket requests logged) and the agent's
        # threads would block on their next log line.
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed with this object)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "noisy_neighbor", "serve", "--listen", "127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        found = re.search(r"http://([\d.]+):(\d+)/metrics", line)
        if found is None:
            self.process.kill()
            self.process.communicate(timeout=10)
            raise RuntimeError(f"the agent did not start: {line!r} {self.log()[-2000:]}")
        self.port = int(found.group(2))
        self.url = f"http://127.0.0.1:{self.port}"

    def get(self, path: str = "/metrics", accept: str | None = None, timeout: float = 30) -> str:
        request = urllib.request.Request(self.url + path)
        if accept:
            request.add_header("Accept", accept)
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.read().decode()

    def log(self) -> str:
        """What it wrote to stderr so far."""
        self._log.seek(0)
        return self._log.read()

    def __del__(self) -> None:
        self._log.close()

    def stop(self, timeout: float = 60) -> tuple[int, str]:
        """SIGTERM (unless it has exited), then its exit status and stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Never left running (its probe would fail every test after).
            self.process.kill()
            self.process.communicate()
            raise
        return self.process.returncode, self.log()
