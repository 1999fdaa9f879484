"""#11.10: the server bounds request lines, headers and slow clients (uvicorn with httptools does not)."""

from __future__ import annotations

import socket
import time

import pytest
from conftest import live_server

from kvplan.web import server


@pytest.fixture(scope="module")
def address():
    with live_server() as where:
        yield where


def _exchange(address, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        return answer


def test_a_plain_request_is_served(address):
    answer = _exchange(address, b"GET /api/gpus HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")


def test_too_many_headers_are_refused_with_431(address):
    headers = b"".join(b"x-h%d: 1\r\n" % i for i in range(server.MAX_HEADERS + 1))
    answer = _exchange(address, b"GET /api/gpus HTTP/1.1\r\nhost: x\r\n" + headers + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431") and b"\r\n\r\n{\"detail\"" in answer


def test_oversized_headers_are_refused_with_431(address):
    big = b"x-big: " + b"a" * (server.MAX_HEADER_BYTES + 1) + b"\r\n"
    answer = _exchange(address, b"GET /api/gpus HTTP/1.1\r\nhost: x\r\n" + big + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431")


def test_an_oversized_request_target_is_refused_with_414(address):
    answer = _exchange(address, b"GET /" + b"a" * (server.MAX_URL + 1) + b" HTTP/1.1\r\nhost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 414")


def test_a_client_that_never_finishes_its_request_is_cut_off(address, monkeypatch):
    """A slowloris client: half a request line, then nothing. The connection closes at the deadline (here
    shortened to 0.5 s) with no answer, where uvicorn alone would wait forever."""
    monkeypatch.setattr(server, "REQUEST_TIMEOUT", 0.5)
    with socket.create_connection(address, timeout=10) as s:
        s.sendall(b"GET /api/gp")
        start = time.monotonic()
        assert s.recv(100) == b""  # closed by the server
        assert time.monotonic() - start < 5


def test_an_idle_connection_is_closed(address, monkeypatch):
    monkeypatch.setattr(server, "REQUEST_TIMEOUT", 0.5)
    with socket.create_connection(address, timeout=10) as s:
        start = time.monotonic()
        assert s.recv(100) == b""
        assert time.monotonic() - start < 5


def test_keep_alive_serves_several_requests(address):
    with socket.create_connection(address, timeout=5) as s:
        for _ in range(3):
            s.sendall(b"GET /api/gpus HTTP/1.1\r\nhost: x\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            body = b""
            while len(body) < length:
                body += s.recv(length - len(body))


def test_the_answer_cache_is_bounded_in_entries_and_bytes():
    from kvplan.web.app import AnswerCache

    cache = AnswerCache(entries=3, limit=100)
    for k in "abc":
        cache.put(k, b"x" * 10)
    assert cache.get("a") == b"x" * 10  # a is now the most recent
    cache.put("d", b"y" * 10)  # four entries: the least recently asked (b) goes
    assert cache.get("b") is None and len(cache) == 3 and cache.bytes == 30
    cache.put("big", b"z" * 26)  # over a quarter of the bytes: not kept
    assert cache.get("big") is None and cache.bytes == 30
    cache.put("e", b"w" * 25)
    cache.put("f", b"v" * 25)
    cache.put("g", b"u" * 25)  # 3 x 25 + ... within 100 bytes and 3 entries
    assert len(cache) == 3 and cache.bytes == 75 and cache.bytes == sum(
        len(cache.get(k) or b"") for k in "efg")
