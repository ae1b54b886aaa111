"""A small HTTP load generator for loopback benchmarks (run as its own process).

`python -m benchmarks.load_generator --port P --paths FILE.json --requests N
--connections C` sends N GET requests, taking the paths in turn, over C keep-alive
HTTP/1.1 connections to 127.0.0.1:P, and prints one JSON object: requests, seconds, rps,
latency percentiles in ms, and the count of unexpected answers (a pixel must answer 200,
a click 302). Bounded by count and by a 10-minute deadline; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

DEADLINE_S = 600


async def worker(
    port: int, queue: list[str], latencies: list[float], errors: list[str], stop_at: float
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while queue and time.monotonic() < stop_at:
            path = queue.pop()
            started = time.perf_counter()
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/124\r\n\r\n".encode()
            )
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            status = status_line.split()[1].decode() if len(status_line.split()) > 1 else "?"
            expected = "200" if path.startswith("/o/") else "302"
            if status != expected:
                errors.append(f"{path}: {status}")
    finally:
        writer.close()


async def run(port: int, paths: list[str], requests: int, connections: int) -> dict:
    queue = [paths[n % len(paths)] for n in range(requests)][::-1]
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.monotonic() + DEADLINE_S
    started = time.perf_counter()
    await asyncio.gather(
        *(worker(port, queue, latencies, errors, stop_at) for _ in range(connections))
    )
    seconds = time.perf_counter() - started
    ordered = sorted(latencies)

    def percentile(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0

    return {
        "requests": len(latencies),
        "seconds": round(seconds, 3),
        "rps": round(len(latencies) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(statistics.median(ordered), 2) if ordered else 0.0,
        "p90_ms": round(percentile(0.90), 2),
        "p99_ms": round(percentile(0.99), 2),
        "errors": len(errors),
        "first_errors": errors[:5],
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load_generator")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--paths", required=True)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with open(args.paths, encoding="utf-8") as handle:
        paths = json.load(handle)
    result = asyncio.run(run(args.port, paths, args.requests, args.connections))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
