"""Code scanning before a job is queued: advice, not a security boundary.

The static scan walks the submission's AST: calls and imports that reach the shell, the network
or the node's processes reject the job; code that imports no ML library gets a warning. An LLM
scan through an OpenAI-compatible endpoint is optional (JOBQUEUE_SCAN_LLM_URL, empty by default:
the portal never needs the internet); when it is down the job is queued with a warning.

A blocklist catches mistakes and careless code; code written to get past it does
(``getattr(os, "sys" + "tem")``, ``importlib.import_module("subpro" + "cess")``, ``os.spawnlp``,
``asyncio.create_subprocess_shell``…). What contains a job is the sandbox it runs in on the node
(jobqueue/executors/sandbox.py), whatever the scan said.
"""

from __future__ import annotations

import ast
import json
import logging
from dataclasses import dataclass, field

import requests
from django.conf import settings

logger = logging.getLogger(__name__)

# Modules whose import alone rejects a job: shells, raw sockets and the network, foreign code.
FORBIDDEN_MODULES = frozenset(
    {"subprocess", "socket", "ctypes", "pty", "paramiko", "requests", "urllib", "http", "ftplib",
     "smtplib", "telnetlib", "asyncssh", "pexpect", "webbrowser", "cffi"}
)  # fmt: skip
FORBIDDEN_BUILTINS = frozenset({"eval", "exec", "compile", "__import__", "breakpoint"})
FORBIDDEN_ATTRIBUTES = {
    "os": frozenset(
        {"system", "popen", "fork", "forkpty", "kill", "killpg", "setuid", "setgid", "execv", "execve",
         "execvp", "execvpe", "execl", "execle", "execlp", "execlpe", "spawnl", "spawnv", "spawnve",
         "posix_spawn", "posix_spawnp", "chown", "chmod", "rmdir", "removedirs"}
    ),
    "shutil": frozenset({"rmtree", "chown"}),
}  # fmt: skip
ML_MODULES = frozenset(
    {"torch", "tensorflow", "jax", "flax", "keras", "sklearn", "numpy", "pandas", "scipy", "transformers",
     "xgboost", "lightgbm", "catboost", "cupy", "datasets", "torchvision", "timm", "optax", "accelerate"}
)  # fmt: skip


@dataclass
class ScanResult:
    problems: list[str] = field(default_factory=list)  # any problem rejects the job
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _root(name: str) -> str:
    return name.split(".", 1)[0]


def static_scan(code: str) -> ScanResult:
    """Reject dangerous patterns found in the AST of `code`; warn when nothing looks like ML."""
    result = ScanResult()
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        result.problems.append(f"line {exc.lineno}: syntax error: {exc.msg}")
        return result
    except (MemoryError, RecursionError):  # CPython's parser gives up on very deep nesting
        result.problems.append("the code is nested too deeply to be parsed")
        return result
    imported: set[str] = set()
    aliases: dict[str, str] = {}  # local name -> module (import os as o; from os import system)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imported.add(_root(alias.name))
                aliases[alias.asname or _root(alias.name)] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(_root(node.module))
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for module in sorted(imported & FORBIDDEN_MODULES):
        result.problems.append(f"imports {module}, which the job queue does not allow")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name):
            target = aliases.get(func.id, func.id)
            if func.id in FORBIDDEN_BUILTINS and func.id not in aliases:
                result.problems.append(f"line {node.lineno}: calls {func.id}(), which the job queue does not allow")
            elif "." in target:
                module, _sep, attr = target.rpartition(".")
                if attr in FORBIDDEN_ATTRIBUTES.get(module, ()):
                    result.problems.append(f"line {node.lineno}: calls {module}.{attr}()")
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            module = aliases.get(func.value.id, func.value.id)
            if func.attr in FORBIDDEN_ATTRIBUTES.get(module, ()):
                result.problems.append(f"line {node.lineno}: calls {module}.{func.attr}()")
            if module == "builtins" and func.attr in FORBIDDEN_BUILTINS:
                result.problems.append(f"line {node.lineno}: calls builtins.{func.attr}()")
    if not imported & ML_MODULES:
        result.warnings.append("the code imports no machine-learning library: is it an ML job?")
    return result


def llm_scan(code: str) -> ScanResult:
    """Ask an OpenAI-compatible endpoint for a verdict; a failure is a warning, never a rejection."""
    result = ScanResult()
    url = settings.JOBQUEUE_SCAN_LLM_URL
    if not url:
        return result
    headers = {"Content-Type": "application/json"}
    if settings.JOBQUEUE_SCAN_LLM_API_KEY:
        headers["Authorization"] = f"Bearer {settings.JOBQUEUE_SCAN_LLM_API_KEY}"
    prompt = (
        "You review Python code submitted to a GPU job queue for machine-learning competitions. "
        'Answer with JSON only: {"malicious": true|false, "ml_related": true|false, "reason": "..."}. '
        "Malicious means it attacks the node, escapes its sandbox, mines coins or exfiltrates data."
    )
    body = {
        "model": settings.JOBQUEUE_SCAN_LLM_MODEL,
        "messages": [{"role": "system", "content": prompt}, {"role": "user", "content": code}],
        "temperature": 0,
    }
    try:
        resp = requests.post(
            url.rstrip("/") + "/chat/completions",
            json=body,
            headers=headers,
            timeout=settings.JOBQUEUE_SCAN_LLM_TIMEOUT,
        )
        resp.raise_for_status()
        content = resp.json()["choices"][0]["message"]["content"]
        verdict = json.loads(content.strip().removeprefix("```json").removesuffix("```"))
    except (requests.RequestException, KeyError, IndexError, TypeError, ValueError) as exc:
        logger.warning("LLM code scan unavailable: %s", exc)
        result.warnings.append("the LLM code scan was unavailable; only the static scan ran")
        return result
    if verdict.get("malicious"):
        result.problems.append(f"the LLM code scan flagged the code: {verdict.get('reason', '')}".strip())
    elif verdict.get("ml_related") is False:
        result.warnings.append(f"the LLM code scan found no ML work: {verdict.get('reason', '')}".strip())
    return result


def scan(code: str) -> ScanResult:
    result = static_scan(code)
    if result.ok:
        llm = llm_scan(code)
        result.problems += llm.problems
        result.warnings += llm.warnings
    return result
