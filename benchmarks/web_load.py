"""Load on `kvplan serve` over loopback (python benchmarks/web_load.py [--clients 32] [--requests 4000]).

Starts the server in a separate process, then keeps --clients concurrent keep-alive connections sending
POST /api/plan until --requests have been answered (a bounded number). The bodies cycle through 48 different
plans (8 models x 3 GPU sets x 2 lengths); a warm-up pass asks each once, so the timed requests are answered
from the server's answer cache, as the page's repeated questions are. `--fresh` makes every body new (a seq
never asked before), so each timed request runs the library. The client is raw asyncio HTTP/1.1, light enough
not to starve the server on a 2-core machine. Reports p50 / p99 latency, errors and throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import httpx

MODELS = ["falcon-7b", "llama-3.1-8b", "llama-3.1-70b", "qwen3-30b-a3b", "mixtral-8x7b", "gemma-2-9b-it",
          "deepseek-v2-lite", "gpt-oss-20b"]
GPUS = [["a10g"], ["h100"], ["l4", "a100-80g"]]
SEQS = [1000, 8192]


def bodies() -> list[dict]:
    return [{"model": m, "gpu": g, "seq": s, "batch": 8} for m, g, s in itertools.product(MODELS, GPUS, SEQS)]


async def one_connection(port: int, plans, left: list[int], latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while left[0] > 0:
            left[0] -= 1
            body = json.dumps(next(plans)).encode()
            request = (b"POST /api/plan HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            data = await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not head.startswith(b"HTTP/1.1 200") or b'"scenarios"' not in data:
                errors[0] += 1
    finally:
        writer.close()


async def run(port: int, clients: int, total: int, fresh: bool) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = [0]
    base = bodies()
    if fresh:
        plans = ({**base[i % len(base)], "seq": 1000 + i} for i in itertools.count())
    else:
        for body in base:  # warm-up: each plan once
            await run_one(port, body)
        plans = itertools.cycle(base)
    left = [total]
    gc.collect()
    gc.freeze()  # the load generator's own collections would stall every connection and count as latency
    await asyncio.gather(*(one_connection(port, plans, left, latencies, errors) for _ in range(clients)))
    return latencies, errors[0]


async def run_one(port: int, body: dict) -> None:
    await one_connection(port, iter([body]), [1], [], [0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--fresh", action="store_true", help="every body new: no answer from the cache")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="let the OS place the server and the load generator (default: one core each)")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cpus = sorted(os.sched_getaffinity(0))
    pin = args.pin and len(cpus) >= 2
    server = subprocess.Popen([sys.executable, "-m", "kvplan.cli", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL,
                              preexec_fn=(lambda: os.sched_setaffinity(0, {cpus[0]})) if pin else None)
    if pin:  # the server on one core, the load generator on the others: neither waits for the other's slice
        os.sched_setaffinity(0, set(cpus[1:]))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(url + "/api/gpus", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        start = time.perf_counter()
        latencies, errors = asyncio.run(run(port, args.clients, args.requests, args.fresh))
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=10)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    kind = "every body new" if args.fresh else "48 bodies, answered from the cache"
    print(f"{len(latencies)} plan requests ({kind}), {args.clients} concurrent clients, {errors} errors")
    print(f"latency p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; "
          f"{len(latencies) / wall:.0f} requests/s")


if __name__ == "__main__":
    main()
