"""An OpenAI-compatible endpoint that misbehaves on purpose, run as its own process so a test can
kill it mid-load:

    python tests/integration/misbehaving_llm.py --port 8123 --mode hung|slow|garbage|labels

hung: reads the request, never answers. slow: a well-formed answer after --delay seconds.
garbage: 200 with text that is not the JSON asked for. labels: JSON in the asked shape naming
candidate labels that do not exist. --engine: also a child process that outlives a killed
parent (as vLLM's engine does). /v1/models and /health answer at once (the server looks up).
"""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion(content: str) -> bytes:
    message = {"role": "assistant", "content": content}
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "misbehaving",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=["hung", "slow", "garbage", "labels"], required=True)
    ap.add_argument("--delay", type=float, default=6.0)
    ap.add_argument(
        "--engine", action="store_true", help="also start a child process, as vLLM starts its engine"
    )
    a = ap.parse_args()
    if a.engine:  # in our process group; it outlives us when only we are killed
        import subprocess
        import sys

        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            self._send(
                json.dumps({"object": "list", "data": [{"id": "misbehaving", "object": "model"}]}).encode()
            )

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", 0)))
            if a.mode == "hung":
                time.sleep(3600)
                return
            if a.mode == "slow":
                time.sleep(a.delay)
                self._send(completion('{"ranking": ["A", "B"], "scores": {"A": 9, "B": 8}}'))
            elif a.mode == "garbage":
                self._send(completion("Sure! Here are some great places: the first one and the second one."))
            else:
                self._send(
                    completion(
                        '{"ranking": ["ZZ", "QQ", "AAA"], "scores": {"ZZ": 10}, "fact_ids": ["made.up"]}'
                    )
                )

        def log_message(self, *_args: object) -> None:
            pass

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", a.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
