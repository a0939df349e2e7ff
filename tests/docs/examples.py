"""The executed examples of docs/: parse ``console`` blocks, run them in one shell, compare.

A ``console`` block holds commands (``$ `` lines; a line ending in `` \\`` goes on) each
followed by the output it must print. An expected line ``...`` stands for any number of lines,
``...`` inside a line for any text; everything else must match exactly (trailing spaces aside).
A command with a here-document (``<<'EOF'``) takes the lines up to ``EOF``. A command ending
in `` &`` runs in the background (its own process group, output to a log) until
:meth:`Shell.close`. Other fences are not executed; shell-like ones (``bash``, ``sh``, no
language but ``$ `` lines) are refused unless a ``<!-- not executed: why -->`` line precedes them.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

FENCE = re.compile(
    r"^(?:<!-- not executed: (?P<why>[^>]*?) -->\n)?"
    r"```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```\s*$",
    re.M | re.S,
)
HEREDOC = re.compile(r"<<-?\s*'?(?P<end>\w+)'?")  # `python - <<'EOF'`: the lines up to EOF


@dataclass(frozen=True)
class Example:
    """One command of a page and the output it must print."""

    page: str
    line: int
    command: str
    expected: list[str]

    @property
    def background(self) -> bool:
        return self.command.rstrip().endswith("&")


@dataclass(frozen=True)
class Fence:
    page: str
    line: int
    language: str
    body: str
    not_executed: str | None


def nav_pages(root: Path) -> list[str]:
    """The pages of mkdocs.yml's nav, in order."""

    def walk(items) -> list[str]:
        out = []
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            out += walk(value) if isinstance(value, list) else [value]
        return out

    return walk(yaml.safe_load((root / "mkdocs.yml").read_text())["nav"])


def fences(page: str, text: str) -> list[Fence]:
    """Every fenced block of a page, with the line it starts on."""
    return [
        Fence(page, text.count("\n", 0, m.start("lang")) + 1, m["lang"], m["body"], m["why"])
        for m in FENCE.finditer(text)
    ]


def examples(fence: Fence) -> list[Example]:
    """The commands of one ``console`` block and their expected output."""
    out: list[Example] = []
    lines = fence.body.rstrip("\n").split("\n")
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise ValueError(f"{fence.page}:{fence.line + i}: output before any `$ ` command")
        start, command = i, lines[i][2:]
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command = command + "\n" + lines[i]
        heredoc = HEREDOC.search(command)
        while heredoc and i + 1 < len(lines) and lines[i] != heredoc["end"]:
            i += 1
            command = command + "\n" + lines[i]
        i += 1
        expected = []
        while i < len(lines) and not lines[i].startswith("$ "):
            expected.append(lines[i])
            i += 1
        out.append(Example(fence.page, fence.line + 1 + start, command, expected))
    return out


def matches(expected: list[str], actual: str) -> bool:
    """``actual`` fits ``expected`` with ``...`` as a wildcard (lines or text in a line)."""
    parts = []
    for line in expected:
        line = line.rstrip()
        if line == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*".join(re.escape(p) for p in line.split("...")) + r"[ \t]*\n")
    lines = [line.rstrip() for line in actual.rstrip("\n").split("\n")]
    text = "".join(line + "\n" for line in lines) if actual.strip() else ""
    return re.fullmatch("".join(parts), text) is not None


class Shell:
    """One bash session in ``cwd``, as a reader's terminal: ``cd`` and ``export`` carry on."""

    def __init__(self, cwd: Path, env: dict[str, str], ports: dict[str, str]) -> None:
        self.cwd, self.ports = cwd, ports
        self.started = time.monotonic()
        self.logs = cwd / ".docs-background"
        self.logs.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], cwd=cwd, env=env, text=True, bufsize=1,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def localise(self, command: str) -> str:
        """The docs' ports (5000, 5001, …) replaced by free ones on this machine."""
        for port, free in self.ports.items():
            command = re.sub(rf"\b{port}\b", free, command)
        return command

    def run(self, example: Example, timeout: float) -> tuple[int, str]:
        """Exit status and output of one command (background: started, 0 and no output)."""
        command = self.localise(example.command)
        if example.background:
            log = self.logs / f"{example.page.replace('/', '_')}-{example.line}.log"
            inner = command.rstrip().removesuffix("&")
            command = (
                f"setsid bash -c {shlex.quote(inner)} >{log} 2>&1 </dev/null & "
                f"echo $! >>{self.logs}/pids"
            )
        marker = f"__docs_example_done_{time.time_ns()}__"
        self.proc.stdin.write(f"{command}\n__rc=$?; echo; echo {marker}$__rc\n")
        self.proc.stdin.flush()
        out, deadline = [], time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                where = f"{example.page}:{example.line}"
                raise TimeoutError(f"{where}: `{command}` ran past {timeout} s") from None
            if line.startswith(marker) or line == "":
                rc = int(line[len(marker) :] or 1) if line else 1
                return rc, "".join(out[:-1] if out and out[-1] == "\n" else out)
            out.append(line)

    def close(self) -> None:
        """Stop the background commands (their process groups) and the shell."""
        pids = self.logs / "pids"
        groups = [int(pid) for pid in pids.read_text().split()] if pids.exists() else []
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in groups:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, sig)
            time.sleep(2 if groups else 0)
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
