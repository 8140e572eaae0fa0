"""ReadYourWritesMiddleware: a client that wrote reads the primary for pin_seconds, over
WSGI (Client) and ASGI (AsyncClient); other clients keep reading the replicas."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from django.core import signing
from django.db import connections
from django.test import AsyncClient, Client, override_settings

from django_dataflow.routing.middleware import ReadYourWritesMiddleware
from tests.routing.helpers import run_async, wait_for_replica

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
COOKIE = ReadYourWritesMiddleware.cookie_name
ROUTING = {
    "default": {"replicas": {"replica1": 3, "replica2": 1}, "pin_seconds": 1.0},
    "events": {"replicas": ["events_replica"], "models": ["routingapp.Event"]},
}


@pytest.fixture(autouse=True)
def short_pins():
    with override_settings(DATAFLOW_ROUTING=ROUTING):
        yield


@pytest.fixture
def client():
    yield Client()
    connections.close_all()


def test_the_writing_request_reads_its_write_from_the_primary(client):
    body = client.post("/write/first").json()
    assert body == {"alias": "default", "in_recovery": False, "found": True}


def test_the_next_page_of_the_writer_reads_the_primary_until_the_pin_expires(client):
    response = client.post("/write/fresh")
    assert COOKIE in response.cookies
    assert response.cookies[COOKIE]["httponly"]
    # Immediately after the write: the replica might not have it yet, the primary has.
    assert client.get("/read/fresh").json() == {
        "alias": "default",
        "in_recovery": False,
        "found": True,
    }
    time.sleep(1.1)
    wait_for_replica()
    body = client.get("/read/fresh").json()
    assert body["in_recovery"] is True
    assert body["found"] is True


def test_other_clients_are_not_pinned(client):
    client.post("/write/theirs")
    other = Client()
    body = other.get("/read/theirs").json()
    assert body["in_recovery"] is True
    assert COOKIE not in other.cookies


def test_a_forged_cookie_pins_nothing(client):
    client.cookies[COOKIE] = signing.dumps({"default": time.time() + 60}, key="not-the-key")
    assert client.get("/read/x").json()["in_recovery"] is True
    client.cookies[COOKIE] = signing.dumps(
        {"default": time.time() + 60}, salt=ReadYourWritesMiddleware.salt
    )
    assert client.get("/read/x").json()["in_recovery"] is False


def test_a_request_without_writes_sets_no_cookie(client):
    response = client.get("/read/nothing")
    assert COOKIE not in response.cookies


def test_with_pin_seconds_0_no_cookie_is_set(client):
    with override_settings(
        DATAFLOW_ROUTING={"default": {"replicas": ["replica1"], "pin_seconds": 0}}
    ):
        response = client.post("/write/unpinned")
    assert COOKIE not in response.cookies


def test_asgi_requests_pin_the_writer_and_nobody_else():
    async def main():
        writer, other = AsyncClient(), AsyncClient()
        written = (await writer.post("/async/write/asgi")).json()
        again = (await writer.get("/async/read/asgi")).json()
        theirs = (await other.get("/async/read/asgi")).json()
        return written, again, theirs, writer.cookies

    written, again, theirs, cookies = run_async(main)
    assert written == {"alias": "default", "in_recovery": False, "found": True}
    assert again["alias"] == "default"
    assert theirs["in_recovery"] is True
    assert COOKIE in cookies


def test_concurrent_asgi_requests_do_not_share_pins():
    async def main():
        writers = [AsyncClient() for _ in range(5)]
        readers = [AsyncClient() for _ in range(5)]
        responses = await asyncio.gather(
            *(client.post(f"/async/write/w{n}") for n, client in enumerate(writers)),
            *(client.get("/async/read/none") for client in readers),
        )
        return [response.json() for response in responses]

    bodies = run_async(main)
    assert [body["in_recovery"] for body in bodies[:5]] == [False] * 5
    assert [body["in_recovery"] for body in bodies[5:]] == [True] * 5


def streamed(response):
    """The body of a streaming response, consumed and closed as a WSGI server does
    (closing sends ``request_finished``)."""
    body = b"".join(response.streaming_content)
    response.close()
    return json.loads(body)


def test_a_streamed_body_reads_the_primary_after_the_views_write(client):
    body = streamed(client.post("/stream/write/streamed"))
    assert body == {"alias": "default", "in_recovery": False, "found": True}


def test_a_streamed_body_of_a_pinned_client_reads_the_primary(client):
    client.cookies[COOKIE] = signing.dumps(
        {"default": time.time() + 60}, salt=ReadYourWritesMiddleware.salt
    )
    assert streamed(client.get("/stream/read/x"))["in_recovery"] is False


def test_asgi_a_streamed_body_reads_the_primary_after_the_views_write():
    """Through Django's ASGIHandler, as uvicorn runs it: the body is sent after the
    middleware returned."""
    from django.core.handlers.asgi import ASGIHandler

    async def main():
        incoming = asyncio.Queue()
        incoming.put_nowait({"type": "http.request", "body": b"", "more_body": False})
        sent = []

        async def receive():
            return await incoming.get()  # then waits: the client stays connected

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/async/stream/write/asgi-streamed",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"testserver")],
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 50000),
        }
        await ASGIHandler()(scope, receive, send)
        return sent

    sent = run_async(main)
    assert sent[0]["status"] == 200
    body = b"".join(message.get("body", b"") for message in sent[1:])
    assert json.loads(body) == {"alias": "default", "in_recovery": False, "found": True}
