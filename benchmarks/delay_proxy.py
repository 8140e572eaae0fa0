"""A loopback TCP proxy that delays every new connection: the spike workload's slow connect.

HikariCP's "spike demand" test makes every physical connect take 150 ms more. This proxy
does that for every contender alike: it accepts a connection at once, waits ``--delay-ms``
before it opens its own connection to the server, then forwards both directions
unchanged. The client's connect therefore completes only after
the delay (its first read, the server's answer to the startup packet, waits for it);
queries on an established connection are not delayed.

It runs as a process of its own (``DelayProxy`` starts it), so forwarding never competes
with the benchmark's threads for the interpreter lock. It is bounded: loopback addresses
only, at most ``--max-connections`` open at once (more are refused), and it exits by
itself after ``--max-seconds`` or when its standard input closes (the benchmark ended).

A control port answers one line per request with JSON: ``stats`` gives the connections
open now (accepted and not yet closed, connects still being delayed included), those
still in their delay, the peak since the last ``reset``, and the counts accepted and
refused; ``reset`` zeroes the peak and the counts.

``python benchmarks/delay_proxy.py --upstream-port 5432`` prints
``{"port": ..., "control": ...}`` and serves until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Proxy:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.open = 0
        self.delaying = 0
        self.peak = 0
        self.accepted = 0
        self.refused = 0
        self.failed = 0

    def stats(self) -> dict[str, int]:
        return {
            "open": self.open,
            "delaying": self.delaying,
            "peak": self.peak,
            "accepted": self.accepted,
            "refused": self.refused,
            "failed": self.failed,
        }

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.open >= self.args.max_connections:
            self.refused += 1
            writer.close()
            return
        self.open += 1
        self.accepted += 1
        self.peak = max(self.peak, self.open)
        upstream_writer = None
        try:
            self.delaying += 1
            try:
                await asyncio.sleep(self.args.delay_ms / 1000.0)
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    self.args.upstream_host, self.args.upstream_port
                )
            finally:
                self.delaying -= 1
            for stream in (writer, upstream_writer):
                sock = stream.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pipes = [
                asyncio.ensure_future(self.pipe(reader, upstream_writer)),
                asyncio.ensure_future(self.pipe(upstream_reader, writer)),
            ]
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            for pipe in pipes:
                pipe.cancel()
        except OSError:
            self.failed += 1
        except asyncio.CancelledError:  # the proxy is stopping
            pass
        finally:
            self.open -= 1
            for stream in (writer, upstream_writer):
                if stream is not None:
                    stream.close()

    @staticmethod
    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            return

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                command = line.decode().strip()
                if command == "reset":
                    self.peak = self.open
                    self.accepted = self.refused = self.failed = 0
                writer.write((json.dumps(self.stats()) + "\n").encode())
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        server = await asyncio.start_server(self.client, "127.0.0.1", 0, backlog=512)
        control = await asyncio.start_server(self.control, "127.0.0.1", 0)
        ports = {
            "port": server.sockets[0].getsockname()[1],
            "control": control.sockets[0].getsockname()[1],
        }
        print(json.dumps(ports), flush=True)
        stdin_closed = loop.create_future()

        def watch_stdin() -> None:  # a thread: EOF on stdin means the benchmark is gone
            try:
                sys.stdin.buffer.read()
            finally:
                loop.call_soon_threadsafe(
                    lambda: stdin_closed.done() or stdin_closed.set_result(None)
                )

        threading.Thread(target=watch_stdin, daemon=True).start()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stdin_closed, timeout=self.args.max_seconds)
        server.close()
        control.close()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream-host", default="127.0.0.1")
    parser.add_argument("--upstream-port", type=int, default=5432)
    parser.add_argument("--delay-ms", type=float, default=150.0)
    parser.add_argument("--max-connections", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args(argv)
    if not _loopback(args.upstream_host):
        parser.error("the upstream must be a loopback address")
    return args


def main(argv: list[str]) -> int:
    asyncio.run(_Proxy(parse_args(argv)).serve())
    return 0


class DelayProxy:
    """The benchmark's handle on a proxy process: start it, read its counters, stop it."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        delay_ms: float,
        max_seconds: float = 3600.0,
        max_connections: int = 200,
    ) -> None:
        if not _loopback(upstream_host):
            raise ValueError(f"the delaying proxy forwards to loopback only, not {upstream_host}")
        self.delay_ms = delay_ms
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--upstream-host",
                upstream_host,
                "--upstream-port",
                str(upstream_port),
                "--delay-ms",
                str(delay_ms),
                "--max-seconds",
                str(max_seconds),
                "--max-connections",
                str(max_connections),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        ports = json.loads(self.process.stdout.readline() or b"{}")
        if "port" not in ports:
            self.close()
            raise RuntimeError("the delaying proxy did not start")
        self.port: int = ports["port"]
        self._control = socket.create_connection(("127.0.0.1", ports["control"]))
        self._control.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._answers = self._control.makefile("rb")
        self._lock = threading.Lock()

    def _ask(self, command: str) -> dict[str, int]:
        with self._lock:
            self._control.sendall(command.encode() + b"\n")
            return json.loads(self._answers.readline())

    def stats(self) -> dict[str, int]:
        return self._ask("stats")

    def reset(self) -> dict[str, int]:
        return self._ask("reset")

    def wait_until_idle(self, timeout: float = 15.0) -> int:
        """Wait until no connection is open through the proxy; return how many are left."""
        deadline = time.monotonic() + timeout
        left = self.stats()["open"]
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = self.stats()["open"]
        return left

    def close(self) -> None:
        if getattr(self, "_control", None) is not None:
            self._answers.close()
            self._control.close()
            self._control = None
        if self.process.poll() is None:
            try:
                if self.process.stdin is not None:
                    self.process.stdin.close()
                self.process.wait(timeout=5)
            except Exception:
                self.process.kill()
                self.process.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
