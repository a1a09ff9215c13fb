"""Tests for devkit.package (the .difypkg builder) and devkit.check (the layout checker)."""

from __future__ import annotations

import os
import shutil
import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml

from devkit.check import boot_check, check_plugin
from devkit.package import PackageError, build_package, collect_files

REPO_ROOT = Path(__file__).resolve().parents[2]
REAL_GROUP = REPO_ROOT / "group" / "app_bridge.yaml"
needs_real_group = pytest.mark.skipif(
    not REAL_GROUP.is_file(), reason="group/app_bridge.yaml not written yet"
)

LANGS = ("en_US", "zh_Hans", "ja_JP", "pt_BR")
FORBIDDEN_PREFIXES = ("tests/", "devkit/", ".venv/", ".git/", "docs/", ".ci/")
REQUIRED_ENTRIES = (
    "manifest.yaml",
    "main.py",
    "group/app_bridge.yaml",
    "_assets/icon.svg",
    "requirements.txt",
)


def i18n(text: str) -> dict[str, str]:
    return {lang: f"{text} ({lang})" for lang in LANGS}


MANIFEST = {
    "version": "0.1.0",
    "type": "plugin",
    "author": "tester",
    "name": "demo_plugin",
    "label": i18n("Demo"),
    "description": i18n("Demo plugin"),
    "icon": "icon.svg",
    "created_at": "2026-01-01T00:00:00Z",
    "resource": {
        "memory": 268435456,
        "permission": {"endpoint": {"enabled": True}, "storage": {"enabled": True, "size": 4096}},
    },
    "plugins": {"endpoints": ["group/demo.yaml"]},
    "meta": {
        "version": "0.0.1",
        "arch": ["amd64", "arm64"],
        "runner": {"language": "python", "version": "3.12", "entrypoint": "main"},
    },
}
GROUP = {
    "settings": [
        {
            "name": "mode",
            "type": "select",
            "required": False,
            "default": "fast",
            "options": [
                {"value": "fast", "label": i18n("Fast")},
                {"value": "safe", "label": i18n("Safe")},
            ],
            "label": i18n("Mode"),
            "help": i18n("How to run"),
        }
    ],
    "endpoints": ["endpoints/ping.yaml"],
}
ENDPOINT = {"path": "/ping", "method": "POST", "extra": {"python": {"source": "endpoints/ping.py"}}}
ENDPOINT_SOURCE = textwrap.dedent(
    """\
    from dify_plugin import Endpoint


    class Ping(Endpoint):
        def _invoke(self, r, values, settings):
            raise NotImplementedError
    """
)
FAKE_MAIN_WITH_HEARTBEAT = textwrap.dedent(
    """\
    import json, os, pathlib, sys, time
    pathlib.Path("pid.txt").write_text(str(os.getpid()))
    print(json.dumps({"event": "log", "data": {"message": "hi"}}), flush=True)
    print("", flush=True)
    print(json.dumps({"event": "heartbeat", "session_id": None, "data": {}}), flush=True)
    time.sleep(600)
    """
)


def write_yaml(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def edit_yaml(path: Path, changes: dict[str, object]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(changes)
    write_yaml(path, data)


@pytest.fixture(scope="session")
def plugin_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template") / "plugin"
    write_yaml(root / "manifest.yaml", MANIFEST)
    write_yaml(root / "group" / "demo.yaml", GROUP)
    write_yaml(root / "endpoints" / "ping.yaml", ENDPOINT)
    (root / "endpoints" / "ping.py").write_text(ENDPOINT_SOURCE, encoding="utf-8")
    (root / "_assets").mkdir()
    (root / "_assets" / "icon.svg").write_text("<svg/>", encoding="utf-8")
    (root / "main.py").write_text("print('main')\n", encoding="utf-8")
    (root / "requirements.txt").write_text("dify_plugin==0.10.2\n", encoding="utf-8")
    return root


@pytest.fixture
def plugin(plugin_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the synthetic plugin, safe to mutate."""
    return Path(shutil.copytree(plugin_template, tmp_path / "plugin"))


def zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


# -- the real repository ---------------------------------------------------------------------


@needs_real_group
def test_real_package_contains_runtime_files_only(tmp_path: Path) -> None:
    assert (REPO_ROOT / ".difyignore").is_file(), ".difyignore missing: dev files would ship"
    package = build_package(REPO_ROOT, tmp_path)
    names = zip_names(package)
    assert package.name.startswith("app_bridge-") and package.suffix == ".difypkg"
    for required in REQUIRED_ENTRIES:
        assert required in names
    assert [n for n in names if n.startswith(FORBIDDEN_PREFIXES)] == []
    assert [n for n in names if "__pycache__" in n.split("/")] == []
    assert [n for n in names if n.split("/")[-1] == ".env" or n.endswith(".difypkg")] == []
    assert names == sorted(names)


@needs_real_group
def test_real_plugin_boots_and_sends_heartbeat() -> None:
    assert boot_check(REPO_ROOT) == []


# -- checker on a synthetic plugin -----------------------------------------------------------


def test_valid_plugin_has_no_problems(plugin: Path) -> None:
    assert check_plugin(plugin, boot=False) == []


def test_bad_name_is_reported(plugin: Path) -> None:
    edit_yaml(plugin / "manifest.yaml", {"name": "App Bridge"})
    problems = check_plugin(plugin, boot=False)
    assert any("name" in p and "App Bridge" in p for p in problems), problems


def test_uppercase_author_is_a_daemon_error(plugin: Path) -> None:
    edit_yaml(plugin / "manifest.yaml", {"author": "Tester"})
    assert any("author" in p for p in check_plugin(plugin, boot=False))


def test_missing_icon_is_reported(plugin: Path) -> None:
    (plugin / "_assets" / "icon.svg").unlink()
    problems = check_plugin(plugin, boot=False)
    assert any("icon" in p and "_assets" in p for p in problems), problems


def test_patch_method_is_rejected_naming_the_file(plugin: Path) -> None:
    edit_yaml(plugin / "endpoints" / "ping.yaml", {"method": "PATCH"})
    problems = check_plugin(plugin, boot=False)
    assert any("PATCH" in p and "endpoints/ping.yaml" in p for p in problems), problems


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: edit_yaml(r / "manifest.yaml", {"version": "1.0"}), "version"),
        (lambda r: edit_yaml(r / "manifest.yaml", {"created_at": "yesterday"}), "created_at"),
        (
            lambda r: edit_yaml(r / "endpoints" / "ping.yaml", {"path": "ping"}),
            "must start with '/'",
        ),
        (lambda r: (r / "endpoints" / "ping.py").unlink(), "not found"),
        (lambda r: (r / "group" / "demo.yaml").unlink(), "group/demo.yaml"),
        (lambda r: (r / "endpoints" / "ping.py").write_text("class A: pass\n"), "exactly one"),
    ],
)
def test_layout_problems(plugin: Path, mutate: object, expected: str) -> None:
    mutate(plugin)  # type: ignore[operator]
    problems = check_plugin(plugin, boot=False)
    assert any(expected in p for p in problems), problems


def test_select_default_must_be_an_option(plugin: Path) -> None:
    group = yaml.safe_load((plugin / "group" / "demo.yaml").read_text(encoding="utf-8"))
    group["settings"][0]["default"] = "turbo"
    write_yaml(plugin / "group" / "demo.yaml", group)
    assert any("'turbo'" in p for p in check_plugin(plugin, boot=False))


def test_missing_translation_is_reported(plugin: Path) -> None:
    group = yaml.safe_load((plugin / "group" / "demo.yaml").read_text(encoding="utf-8"))
    del group["settings"][0]["help"]["ja_JP"]
    write_yaml(plugin / "group" / "demo.yaml", group)
    problems = check_plugin(plugin, boot=False)
    assert any("ja_JP" in p and "mode" in p for p in problems), problems


def test_endpoints_need_endpoint_permission(plugin: Path) -> None:
    manifest = yaml.safe_load((plugin / "manifest.yaml").read_text(encoding="utf-8"))
    manifest["resource"]["permission"]["endpoint"]["enabled"] = False
    write_yaml(plugin / "manifest.yaml", manifest)
    assert any("permission.endpoint" in p for p in check_plugin(plugin, boot=False))


# -- boot check on fake entry points ---------------------------------------------------------


def test_boot_succeeds_on_heartbeat_and_stops_the_process(plugin: Path) -> None:
    (plugin / "main.py").write_text(FAKE_MAIN_WITH_HEARTBEAT, encoding="utf-8")
    assert boot_check(plugin) == []
    pid = int((plugin / "pid.txt").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_boot_failure_reports_stderr(plugin: Path) -> None:
    (plugin / "main.py").write_text("raise SystemExit('broken plugin')\n", encoding="utf-8")
    problems = boot_check(plugin)
    assert len(problems) == 1 and "exit code 1" in problems[0] and "broken plugin" in problems[0]


def test_boot_times_out_without_heartbeat(plugin: Path) -> None:
    (plugin / "main.py").write_text("import time\ntime.sleep(600)\n", encoding="utf-8")
    assert any("no heartbeat" in p for p in boot_check(plugin, timeout=1))


# -- packager on a synthetic plugin ----------------------------------------------------------


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name, encoding="utf-8")


def test_difyignore_has_gitignore_semantics(plugin: Path) -> None:
    (plugin / ".difyignore").write_text(
        "# comment\n*.txt\n!keep.txt\n!requirements.txt\ncache/\n/only_root.py\n", encoding="utf-8"
    )
    touch(plugin, "notes.txt", "keep.txt", "sub/keep.txt", "sub/other.txt", "cache/a.py")
    touch(plugin, "sub/cache/b.py", "cache.py", "only_root.py", "sub/only_root.py", ".hidden")
    names = {p.as_posix() for p in collect_files(plugin)}
    assert {"keep.txt", "sub/keep.txt", "cache.py", "sub/only_root.py", ".hidden"} <= names
    assert {"requirements.txt", ".difyignore"} <= names
    excluded = {"notes.txt", "sub/other.txt", "cache/a.py", "sub/cache/b.py", "only_root.py"}
    assert not names & excluded


def test_gitignore_is_the_fallback_and_nothing_is_built_in(plugin: Path) -> None:
    (plugin / ".gitignore").write_text("*.log\n", encoding="utf-8")
    touch(plugin, "debug.log", "__pycache__/x.pyc", ".env")
    names = {p.as_posix() for p in collect_files(plugin)}
    assert "debug.log" not in names
    assert {"__pycache__/x.pyc", ".env", ".gitignore"} <= names


def test_difyignore_wins_over_gitignore(plugin: Path) -> None:
    (plugin / ".gitignore").write_text("*.log\n", encoding="utf-8")
    (plugin / ".difyignore").write_text("*.tmp\n", encoding="utf-8")
    touch(plugin, "debug.log", "scratch.tmp")
    names = {p.as_posix() for p in collect_files(plugin)}
    assert "debug.log" in names and "scratch.tmp" not in names


def test_package_is_sorted_and_reproducible(plugin: Path, tmp_path: Path) -> None:
    first = build_package(plugin, tmp_path / "a")
    second = build_package(plugin, tmp_path / "b")
    assert first.name == "demo_plugin-0.1.0.difypkg"
    assert first.read_bytes() == second.read_bytes()
    names = zip_names(first)
    assert names == sorted(names)
    assert "endpoints/ping.py" in names and "manifest.yaml" in names
    with zipfile.ZipFile(first) as archive:
        infos = archive.infolist()
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}


def test_output_inside_root_is_never_packaged(plugin: Path) -> None:
    build_package(plugin, plugin / "dist")
    package = build_package(plugin, plugin / "dist")
    assert not [n for n in zip_names(package) if n.endswith(".difypkg")]


def test_size_limit_lists_largest_files(plugin: Path, tmp_path: Path) -> None:
    (plugin / "big.bin").write_bytes(b"\0" * (2 * 1024 * 1024))
    with pytest.raises(PackageError) as caught:
        build_package(plugin, tmp_path, max_size_mb=1)
    assert "big.bin" in str(caught.value)
    assert not list(tmp_path.glob("*.difypkg"))


def test_failed_checks_refuse_packaging(plugin: Path, tmp_path: Path) -> None:
    edit_yaml(plugin / "endpoints" / "ping.yaml", {"method": "PATCH"})
    with pytest.raises(PackageError, match="PATCH"):
        build_package(plugin, tmp_path)


def test_ignoring_a_declared_file_refuses_packaging(plugin: Path, tmp_path: Path) -> None:
    (plugin / ".difyignore").write_text("endpoints/*.py\n", encoding="utf-8")
    with pytest.raises(PackageError, match=r"endpoints/ping\.py"):
        build_package(plugin, tmp_path)
