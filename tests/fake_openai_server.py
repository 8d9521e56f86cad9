"""A tiny OpenAI-compatible server for tests of managed servers (``serve_command``).

    python tests/fake_openai_server.py --port PORT --model NAME [--requests FILE]
        [--exit-code N] [--silent] [--delay S]

Answers ``GET /v1/models`` (NAME) and ``POST /v1/chat/completions`` with a label of the
request's own schema (``response_format`` json_schema or ``structured_outputs`` choice),
picked from the last user message, and usage counts. ``--requests`` appends one JSON line
per completion (what the test counts); ``--exit-code`` prints a line and exits at once (a
server that fails to start); ``--silent`` never listens (a server that never answers);
``--delay`` waits before listening (a slow start). Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def answer(body: dict, model: str) -> dict:
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        labels = fmt["json_schema"]["schema"]["properties"]["label"]["enum"]
    else:
        labels = (body.get("structured_outputs") or {}).get("choice") or ["?"]
    text = str((body.get("messages") or [{}])[-1].get("content", ""))
    label = labels[int(hashlib.sha256(text.encode()).hexdigest(), 16) % len(labels)]
    content = json.dumps({"label": label}) if fmt else label
    prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages") or [])
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_chars // 4, "completion_tokens": 5,
                      "total_tokens": prompt_chars // 4 + 5}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--model", default="fake-model")
    ap.add_argument("--requests")
    ap.add_argument("--exit-code", type=int)
    ap.add_argument("--silent", action="store_true")
    ap.add_argument("--delay", type=float, default=0.0)
    args = ap.parse_args()
    print(f"fake server for {args.model} on port {args.port}", flush=True)
    if args.exit_code is not None:
        print("fake server: cannot load the weights (on purpose)", flush=True)
        return args.exit_code
    if args.silent:
        while True:
            time.sleep(1)
    time.sleep(args.delay)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, obj: dict) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list",
                                 "data": [{"id": args.model, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": "not found"}})
                return
            if body.get("model") != args.model:
                self._send(404, {"error": {"message": f"model {body.get('model')} not served"}})
                return
            if args.requests:
                with lock, open(args.requests, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"model": body["model"],
                                         "text": body["messages"][-1]["content"][-80:]}) + "\n")
            self._send(200, answer(body, args.model))

        def log_message(self, *a: object) -> None:  # quiet
            pass

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
