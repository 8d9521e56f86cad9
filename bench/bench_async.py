"""Throughput of the OpenAI backend: sequential (concurrency 1) vs async (concurrency 32).

A local fake server in a child process (so it does not share the client's GIL) answers every
chat completion with a real OpenAI JSON body after a fixed latency (default 100 ms): a minimal
asyncio HTTP/1.1 keep-alive server by default, or pytest-httpserver (``--server werkzeug``).
Nothing leaves the machine.

By Little's law a client that keeps ``concurrency`` requests in flight against a server with a
fixed latency L completes ``concurrency / L`` requests per second, ``concurrency`` times the
sequential client's ``1 / L``. The target is 80% of that ideal (0.8 x 32 = 25.6x); the rest is
the client's own CPU time per request and connection set-up. The async side runs ``--n``
requests (640 = 20 rounds of 32, enough for a stable figure); the sequential side, which takes
``L`` per request, runs ``--n-seq`` requests and its rate is compared per request.

    python bench/bench_async.py [--n 640] [--n-seq 64] [--latency 0.1] [--concurrency 32]
                                [--server werkzeug]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import time

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from textgauge.inference.backends.base import PromptRequest
from textgauge.inference.backends.registry import make_backend

LABELS = ["immigration", "not_immigration"]


def completion(content: str) -> dict:
    return {"id": "chatcmpl-bench", "object": "chat.completion", "created": 1732000000,
            "model": "bench", "choices": [{"index": 0, "message": {
                "role": "assistant", "content": content, "refusal": None},
                "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 6, "total_tokens": 46}}


async def _serve_async(latency: float) -> None:
    """A minimal HTTP/1.1 keep-alive server speaking the chat completions wire format."""
    body = json.dumps(completion('{"label":"immigration"}')).encode()
    head = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n")

    async def conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in raw.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                req_body = await reader.readexactly(length)
                json.loads(req_body)  # a real body arrived
                await asyncio.sleep(latency)
                writer.write(head + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}/v1", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    server.close()


def serve(latency: float, kind: str) -> None:
    """Child process: serve until stdin closes; print the URL first."""
    if kind == "asyncio":
        asyncio.run(_serve_async(latency))
        return
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    body = json.dumps(completion('{"label":"immigration"}'))

    def handler(req: Request) -> Response:
        time.sleep(latency)
        return Response(body, content_type="application/json")

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.expect_request("/v1/chat/completions").respond_with_handler(handler)
    server.start()
    print(server.url_for("/v1"), flush=True)
    sys.stdin.read()
    server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=640, help="requests for the async client")
    ap.add_argument("--n-seq", type=int, default=64,
                    help="requests for the sequential client (its rate is per request)")
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--target", type=float, default=0.8,
                    help="share of the Little's-law ideal (concurrency x) to reach")
    ap.add_argument("--server", choices=["asyncio", "werkzeug"], default="asyncio",
                    help="asyncio: minimal keep-alive server; werkzeug: pytest-httpserver "
                         "(a thread and a connection per request: the server becomes the "
                         "bottleneck on 2 cores)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.latency, args.server)

    child = subprocess.Popen([sys.executable, __file__, "--serve", "--latency",
                              str(args.latency), "--server", args.server],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = child.stdout.readline().strip()
    try:
        results = {}
        for name, conc, n in [("sequential", 1, args.n_seq),
                              ("async", args.concurrency, args.n)]:
            reqs = [PromptRequest(f"t{i}", [{"role": "system", "content": "Code it."},
                                            {"role": "user", "content": f"Sentence {i}."}],
                                  LABELS) for i in range(n)]
            be = make_backend({"backend": "openai", "model": "bench", "concurrency": conc,
                               "base_url": url, "report_every": 64},
                              local_only=True)
            got = []
            t0 = time.perf_counter()
            be.classify(reqs, got.extend)
            dt = time.perf_counter() - t0
            assert len(got) == n and all(p.status == "ok" for p in got)
            assert len({p.id for p in got}) == n
            results[name] = n / dt
            print(f"{name:>10} (concurrency {conc:>2}): {n} requests in {dt:6.2f} s "
                  f"= {results[name]:7.1f} req/s")
        ratio = results["async"] / results["sequential"]
        target = args.target * args.concurrency
        print(f"throughput ratio async/sequential: {ratio:.1f}x (latency "
              f"{args.latency * 1000:.0f} ms; Little's law ideal {args.concurrency}x, target "
              f"{args.target:g} x {args.concurrency} = {target:.1f}x): "
              f"{'MET' if ratio >= target else 'NOT MET'}")
        ideal = args.concurrency / args.latency
        print(f"against the ideal itself: async {results['async']:.1f} req/s = "
              f"{results['async'] / ideal:.0%} of concurrency / latency = {ideal:.0f} req/s; "
              f"sequential {results['sequential']:.1f} req/s = "
              f"{results['sequential'] * args.latency:.0%} of 1 / latency")
    finally:
        child.stdin.close()
        child.wait(timeout=30)


if __name__ == "__main__":
    main()
