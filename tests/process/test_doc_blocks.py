"""Every shell block in README.md and docs/*.md runs as written against the local runner.

The convention (docs/development.md, "Command blocks in the docs"):

- fenced blocks tagged ``bash``, ``sh``, ``shell`` or ``console`` are run with bash
  (``-e -o pipefail``), each in a fresh shell, from the root of a scratch copy of the
  repository (its ``.venv`` shared), so ``./dev …`` works and nothing lands in the checkout;
- the test starts the demo runner on port 5002 — the address ``./dev run`` uses — when that
  port is free, else on a free port, and then ``127.0.0.1:5002`` / ``localhost:5002`` in a
  block point at it; ``APP_BRIDGE_RUNNER`` (its base URL) and ``APP_BRIDGE_PORT`` are exported
  for tools that talk to it;
- a block whose info string has ``no-run`` is documentation only (a server's shell, a
  long-running command);
- a block tagged ``output`` right after a run block is what it must print: ``…`` matches
  anything, the rest literally (leading and trailing blank lines ignored).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devkit.runner import DEMO_CONFIG, Bridge, PortInUse, running

ROOT = Path(__file__).resolve().parents[2]
SHELLS = frozenset({"bash", "sh", "shell", "console"})
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.M | re.S)  # fmt: skip
DEMO_ADDRESSES = ("127.0.0.1:5002", "localhost:5002")
BLOCK_TIMEOUT_S = 180
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "dist", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache",
    "*.pem", "*.difypkg", "screenshots",
)  # fmt: skip


@dataclass(frozen=True)
class Block:
    source: str
    line: int
    words: tuple[str, ...]
    body: str
    expected: str | None

    @property
    def id(self) -> str:
        return f"{self.source}:{self.line}"


def _dedent(body: str, indent: str) -> str:
    return "".join(
        line[len(indent) :] if line.startswith(indent) else line
        for line in body.splitlines(keepends=True)
    )


def blocks_of(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    fences = list(FENCE.finditer(text))
    found = []
    for index, fence in enumerate(fences):
        words = tuple(fence["info"].split())
        if not words or words[0] not in SHELLS or "no-run" in words:
            continue
        expected = None
        if index + 1 < len(fences):
            following = fences[index + 1]
            between = text[fence.end() : following.start()]
            if not between.strip() and "output" in following["info"].split():
                expected = _dedent(following["body"], following["indent"])
        found.append(
            Block(
                source=path.relative_to(ROOT).as_posix(),
                line=text.count("\n", 0, fence.start()) + 1,
                words=words,
                body=_dedent(fence["body"], fence["indent"]),
                expected=expected,
            )
        )
    return found


def all_blocks() -> list[Block]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [block for path in files if path.is_file() for block in blocks_of(path)]


def matches(expected: str, actual: str) -> bool:
    pattern = ".*?".join(re.escape(part) for part in expected.strip().split("…"))
    return re.fullmatch(pattern, actual.strip(), re.S) is not None


def test_the_convention_finds_the_readme_blocks():
    readme = [block for block in all_blocks() if block.source == "README.md"]
    assert len(readme) >= 5 and all(block.expected for block in readme)
    assert matches("a…c", "abbbc") and not matches("a…c", "abd")
    assert not any("no-run" in block.words for block in all_blocks())


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A copy of the working tree (uncommitted edits included) sharing the real .venv."""
    copy = tmp_path_factory.mktemp("repo") / "app-bridge"
    shutil.copytree(ROOT, copy, ignore=COPY_IGNORE, symlinks=True)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    return copy


@pytest.fixture(scope="module")
def doc_runner() -> Iterator[tuple[str, Bridge]]:
    """The demo runner where ``./dev run`` puts it when that port is free, else anywhere."""
    for port in (5002, 0):
        bridge = Bridge(DEMO_CONFIG)
        try:
            with running(bridge, port) as base:
                yield base, bridge
                return
        except PortInUse:
            continue


@pytest.mark.parametrize("block", all_blocks(), ids=lambda block: block.id)
def test_doc_block_runs_as_written(block, doc_runner, scratch):
    missing = [
        tool for tool in ("curl", "openssl") if tool in block.body and not shutil.which(tool)
    ]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    base, _ = doc_runner
    address = base.removeprefix("http://")
    script = block.body
    for demo in DEMO_ADDRESSES:
        script = script.replace(demo, address)
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_BRIDGE_")}
    env |= {"APP_BRIDGE_RUNNER": base, "APP_BRIDGE_PORT": address.rsplit(":", 1)[1]}
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{block.id} failed:\n{done.stdout}\n{done.stderr}"
    if block.expected is not None:
        actual = done.stdout.replace(address, "127.0.0.1:5002")
        assert matches(block.expected, actual), (
            f"{block.id} printed:\n{actual}\nexpected:\n{block.expected}"
        )
