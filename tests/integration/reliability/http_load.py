"""A small HTTP load generator for loopback servers: client threads sending a fixed
number of requests each. Every request asks for its own connection (``Connection:
close``), so that the server's workers share the load: a keep-alive connection stays
with the worker that accepted it.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Response:
    client: int
    path: str
    status: int  # 0: no HTTP response (connection error)
    body: bytes
    seconds: float
    error: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


def http_load(
    port: int,
    path_for: Callable[[int, int], str],
    clients: int,
    requests_each: int,
    timeout: float = 30.0,
) -> list[Response]:
    """Send ``clients`` x ``requests_each`` GET requests to 127.0.0.1:``port``; client
    ``c``'s ``i``-th request goes to ``path_for(c, i)``."""
    responses: list[Response] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            for index in range(requests_each):
                path = path_for(number, index)
                started = time.monotonic()
                try:
                    connection.request("GET", path, headers={"Connection": "close"})
                    reply = connection.getresponse()
                    body = reply.read()
                    result = Response(number, path, reply.status, body, 0.0)
                    if reply.will_close:
                        connection.close()
                except (OSError, http.client.HTTPException) as error:
                    connection.close()
                    result = Response(number, path, 0, b"", 0.0, repr(error))
                result.seconds = time.monotonic() - started
                with lock:
                    responses.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def get(port: int, path: str, timeout: float = 5.0) -> Response:
    return http_load(port, lambda _c, _i: path, 1, 1, timeout)[0]
