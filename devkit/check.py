"""Validate the plugin layout with the SDK's own models plus the daemon's stricter rules.

Usage: ``python -m devkit.check [--root DIR] [--no-boot]``. Prints ``ok`` or one problem per
line (exit status 1). The rules are the SDK's models plus what dify-plugin-daemon checks on
upload and in ``dify plugin package`` (its ``pkg/entities/plugin_entities`` validators and
``pkg/plugin_packager``), as listed in docs/development.md.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import datetime
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dify_plugin.core.entities.plugin.setup import PluginConfiguration
from dify_plugin.entities.endpoint import EndpointConfiguration, EndpointProviderConfiguration
from dify_plugin.entities.provider_config import ProviderConfig
from dify_plugin.entities.tool import ToolConfiguration, ToolProviderConfiguration
from pydantic import BaseModel, ValidationError

from devkit.daemon import PluginCrashed, PluginProcess
from devkit.workspace import Workspace

DEFAULT_ROOT = Path(__file__).resolve().parent.parent

AUTHOR_RE = re.compile(r"^[a-z0-9_-]{1,64}$")
NAME_RE = re.compile(r"^[a-z0-9_-]{1,128}$")
# DAEMON pkg/entities/manifest_entities/version.go (VERSION_PATTERN)
VERSION_RE = re.compile(r"^\d{1,4}(\.\d{1,4}){2}(-\w{1,16})?$")
RFC3339_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)
ENDPOINT_METHODS = ("HEAD", "GET", "POST", "PUT", "DELETE", "OPTIONS")
LANGUAGES = ("en_US", "zh_Hans", "ja_JP", "pt_BR")
I18N_KEYS = frozenset({"label", "help", "placeholder"})
STORAGE_MIN, STORAGE_MAX = 1024, 1073741824
MAX_DECLARED_PATH = 128
MAX_OPTION_VALUE = 127
BOOT_TIMEOUT_S = 30.0
_MODEL_ERRORS = (ValueError, TypeError, AttributeError, KeyError)


@dataclass
class CheckResult:
    """Problems found, plus the files the plugin declares (relative POSIX paths)."""

    problems: list[str] = field(default_factory=list)
    referenced: set[str] = field(default_factory=set)
    manifest: dict[str, Any] = field(default_factory=dict)


def check_plugin(root: Path, boot: bool = True) -> list[str]:
    """Return every problem found in the plugin at ``root`` (empty list: all good)."""
    return run_checks(root, boot=boot).problems


def run_checks(root: Path, boot: bool = True) -> CheckResult:
    """Run all checks and also report which files the declarations reference."""
    checker = _Checker(Path(root).resolve())
    checker.run()
    result = checker.result
    if boot and result.manifest:
        result.problems.extend(boot_check(checker.root, _entrypoint(result.manifest)))
    return result


def _entrypoint(manifest: dict[str, Any]) -> str:
    runner = _dig(manifest, "meta", "runner")
    entry = runner.get("entrypoint") if isinstance(runner, dict) else None
    return entry if isinstance(entry, str) and entry else "main"


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class _Checker:
    """Collects problems for one plugin root; each method checks one thing."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.result = CheckResult()

    # -- helpers -------------------------------------------------------------------------

    def problem(self, where: str, message: str) -> None:
        self.result.problems.append(f"{where}: {message}")

    def resolve(self, rel: object, where: str, what: str = "file") -> Path | None:
        """Resolve a declared path inside the root; record it as referenced."""
        if not isinstance(rel, str) or not rel.strip():
            self.problem(where, f"{what} path must be a non-empty string, got {rel!r}")
            return None
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root):
            self.problem(where, f"{what} {rel!r} points outside the plugin root")
            return None
        if not path.is_file():
            self.problem(where, f"{what} {rel!r} not found")
            return None
        self.result.referenced.add(path.relative_to(self.root).as_posix())
        return path

    def load_mapping(self, path: Path, where: str) -> dict[str, Any] | None:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            self.problem(where, f"cannot load YAML: {_one_line(exc)}")
            return None
        if not isinstance(data, dict):
            self.problem(where, "must be a YAML mapping")
            return None
        return data

    def validate(
        self, model: type[BaseModel], data: object, where: str, skip: Iterable[str] = ()
    ) -> Any:
        """Validate ``data`` with an SDK model; report errors, return the instance or None."""
        skipped = set(skip)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = [str(part) for part in err["loc"]]
                if loc and loc[0] in skipped:
                    continue
                self.problem(where, f"{'.'.join(loc) or '(root)'}: {err['msg']}")
        except _MODEL_ERRORS as exc:
            self.problem(where, _one_line(exc))
        return None

    def check_i18n(self, node: Any, where: str, trail: str = "") -> None:
        """Every label/help/placeholder object must carry all SPEC languages."""
        if isinstance(node, list):
            for index, item in enumerate(node):
                name = item.get("name") if isinstance(item, dict) else None
                self.check_i18n(item, where, f"{trail}[{name if name else index}]")
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            here = f"{trail}.{key}" if trail else str(key)
            if key in I18N_KEYS and isinstance(value, dict):
                self.check_i18n_object(value, where, here)
            else:
                self.check_i18n(value, where, here)

    def check_i18n_object(self, value: dict[str, Any], where: str, here: str) -> None:
        missing = [lang for lang in LANGUAGES if not str(value.get(lang) or "").strip()]
        if missing:
            self.problem(where, f"{here} lacks translations: {', '.join(missing)}")

    # -- top level -----------------------------------------------------------------------

    def run(self) -> None:
        path = self.resolve("manifest.yaml", "manifest.yaml", "manifest")
        manifest = self.load_mapping(path, "manifest.yaml") if path else None
        if manifest is None:
            return
        self.result.manifest = manifest
        self.check_manifest(manifest)
        plugins = manifest.get("plugins") if isinstance(manifest.get("plugins"), dict) else {}
        for group in self.declared(plugins, "endpoints"):
            self.check_endpoint_group(group)
        for provider in self.declared(plugins, "tools"):
            self.check_tool_provider(provider)
        self.check_runtime_files(manifest)

    def declared(self, plugins: dict[str, Any], kind: str) -> list[str]:
        items = plugins.get(kind) or []
        if not isinstance(items, list):
            self.problem("manifest.yaml", f"plugins.{kind} must be a list")
            return []
        for item in items:
            if isinstance(item, str) and len(item) > MAX_DECLARED_PATH:
                self.problem("manifest.yaml", f"plugins.{kind} path longer than 128: {item!r}")
        return items

    # -- manifest ------------------------------------------------------------------------

    def check_manifest(self, manifest: dict[str, Any]) -> None:
        flagged = self.check_identity(manifest)
        if not self.check_created_at(manifest.get("created_at")):
            flagged.add("created_at")
        flagged |= self.check_icons(manifest, "manifest.yaml")
        self.validate(PluginConfiguration, manifest, "manifest.yaml", skip=flagged)
        self.check_resource(manifest)
        for key in ("label", "description"):
            if isinstance(manifest.get(key), dict):
                self.check_i18n_object(manifest[key], "manifest.yaml", key)

    def check_identity(self, manifest: dict[str, Any]) -> set[str]:
        """Daemon rules for author/name/version/type; returns the fields it flagged."""
        rules = {
            "author": (AUTHOR_RE, "^[a-z0-9_-]{1,64}$"),
            "name": (NAME_RE, "^[a-z0-9_-]{1,128}$"),
            "version": (VERSION_RE, "semantic x.y.z"),
        }
        flagged: set[str] = set()
        for key, (pattern, shown) in rules.items():
            value = manifest.get(key)
            if not isinstance(value, str) or not pattern.match(value):
                self.problem("manifest.yaml", f"{key} {value!r} must match {shown} (daemon rule)")
                flagged.add(key)
        meta_version = _dig(manifest, "meta", "version")
        if not isinstance(meta_version, str) or not VERSION_RE.match(meta_version):
            self.problem("manifest.yaml", f"meta.version {meta_version!r} must be semantic x.y.z")
        if manifest.get("type") != "plugin":
            self.problem("manifest.yaml", f"type must be 'plugin', got {manifest.get('type')!r}")
            flagged.add("type")
        return flagged

    def check_created_at(self, value: object) -> bool:
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            return True
        if isinstance(value, str) and RFC3339_RE.match(value):
            with contextlib.suppress(ValueError):
                datetime.datetime.fromisoformat(value.upper())
                return True
        self.problem("manifest.yaml", f"created_at {value!r} must be an RFC 3339 timestamp")
        return False

    def check_resource(self, manifest: dict[str, Any]) -> None:
        memory = _dig(manifest, "resource", "memory")
        if isinstance(memory, bool) or not isinstance(memory, int) or memory <= 0:
            self.problem("manifest.yaml", f"resource.memory must be a positive integer: {memory!r}")
        permission = _dig(manifest, "resource", "permission") or {}
        storage = _dig(permission, "storage") or {}
        if isinstance(storage, dict) and storage.get("enabled"):
            size = storage.get("size")
            if not isinstance(size, int) or not STORAGE_MIN <= size <= STORAGE_MAX:
                self.problem(
                    "manifest.yaml",
                    f"resource.permission.storage.size {size!r} must be within "
                    f"{STORAGE_MIN}..{STORAGE_MAX}",
                )
        if _dig(manifest, "plugins", "endpoints") and not _dig(permission, "endpoint", "enabled"):
            self.problem(
                "manifest.yaml",
                "endpoints are declared but resource.permission.endpoint.enabled is not true",
            )

    def check_icons(self, owner: dict[str, Any], where: str) -> set[str]:
        """Icons must exist under _assets/; returns the keys it flagged."""
        flagged: set[str] = set()
        for key in ("icon", "icon_dark"):
            value = owner.get(key)
            if value is None and key == "icon_dark":
                continue
            if not isinstance(value, str) or not value:
                self.problem(where, f"{key} is required (a file name under _assets/)")
            elif not (self.root / "_assets" / value).resolve().is_file():
                self.problem(where, f"{key} {value!r} not found under _assets/")
            else:
                self.result.referenced.add(f"_assets/{value}")
                continue
            flagged.add(key)
        return flagged

    def check_runtime_files(self, manifest: dict[str, Any]) -> None:
        entry = _entrypoint(manifest)
        module = Path(*entry.split("."))
        candidates = [module.with_suffix(".py"), module / "__main__.py"]
        found = [c for c in candidates if (self.root / c).is_file()]
        if not found:
            self.problem("manifest.yaml", f"entrypoint module {entry!r} not found")
        else:
            self.result.referenced.add(found[0].as_posix())
        if (self.root / "requirements.txt").is_file():
            self.result.referenced.add("requirements.txt")
        elif not (self.root / "pyproject.toml").is_file():
            self.problem("requirements.txt", "missing (the daemon installs runtime deps from it)")

    # -- endpoints -----------------------------------------------------------------------

    def check_endpoint_group(self, rel: object) -> None:
        path = self.resolve(rel, "manifest.yaml plugins.endpoints", "endpoint group")
        group = self.load_mapping(path, str(rel)) if path else None
        if group is None:
            return
        where = str(rel)
        settings = self.check_settings(group.get("settings") or [], where)
        endpoints = self.load_endpoints(group.get("endpoints") or [], where)
        data = {"settings": settings, "endpoints": endpoints}
        self.validate(EndpointProviderConfiguration, data, where)
        self.check_i18n(group.get("settings"), where, "settings")

    def check_settings(self, settings: object, where: str) -> list[dict[str, Any]]:
        """Validate each setting as ProviderConfig; return the valid raw dicts."""
        if not isinstance(settings, list):
            self.problem(where, "settings must be a list")
            return []
        valid: list[dict[str, Any]] = []
        seen: set[str] = set()
        for index, raw in enumerate(settings):
            name = raw.get("name") if isinstance(raw, dict) else None
            label = f"setting {name or index!r}"
            if isinstance(name, str):
                if name in seen:
                    self.problem(where, f"{label} is declared twice")
                seen.add(name)
            model = self.validate(ProviderConfig, raw, f"{where} {label}")
            if model is not None:
                self.check_select(model, f"{where} {label}")
                valid.append(raw)
        return valid

    def check_select(self, setting: ProviderConfig, where: str) -> None:
        if setting.type is not ProviderConfig.Config.SELECT:
            return
        values = [option.value for option in setting.options or []]
        if not values:
            self.problem(where, "select setting has no options")
        for value in values:
            if len(value) > MAX_OPTION_VALUE:
                self.problem(where, f"option value longer than {MAX_OPTION_VALUE}: {value!r}")
        if setting.default is not None and setting.default not in values:
            self.problem(where, f"default {setting.default!r} is not one of the options {values}")

    def load_endpoints(self, items: object, where: str) -> list[dict[str, Any]]:
        """Load each endpoint (file path or inline object); return the valid dicts."""
        if not isinstance(items, list):
            self.problem(where, "endpoints must be a list")
            return []
        valid: list[dict[str, Any]] = []
        routes: set[tuple[str, str]] = set()
        for item in items:
            loaded = self.load_endpoint(item, where)
            if loaded is None:
                continue
            data, model, ep_where = loaded
            if (model.path, model.method) in routes:
                self.problem(ep_where, f"duplicate route {model.method} {model.path}")
            routes.add((model.path, model.method))
            valid.append(data)
        return valid

    def load_endpoint(
        self, item: object, where: str
    ) -> tuple[dict[str, Any], EndpointConfiguration, str] | None:
        if isinstance(item, dict):
            data, ep_where = item, f"{where} (inline endpoint)"
        else:
            path = self.resolve(item, where, "endpoint file")
            data = self.load_mapping(path, str(item)) if path else None
            ep_where = str(item)
        if data is None:
            return None
        model = self.validate(EndpointConfiguration, data, ep_where)
        if model is None:
            return None
        self.check_endpoint(model, ep_where)
        return data, model, ep_where

    def check_endpoint(self, endpoint: EndpointConfiguration, where: str) -> None:
        if not endpoint.path.startswith("/"):
            self.problem(where, f"path {endpoint.path!r} must start with '/'")
        if endpoint.method not in ENDPOINT_METHODS:
            allowed = ", ".join(ENDPOINT_METHODS)
            self.problem(where, f"method {endpoint.method!r} is not allowed (use one of {allowed})")
        source = self.resolve(endpoint.extra.python.source, where, "extra.python.source")
        if source is not None:
            self.check_endpoint_source(source, where)

    def check_endpoint_source(self, source: Path, where: str) -> None:
        rel = source.relative_to(self.root).as_posix()
        if source.suffix != ".py":
            self.problem(where, f"source {rel!r} must be a .py file")
            return
        try:
            tree = ast.parse(source.read_text(encoding="utf-8"), filename=rel)
        except (OSError, UnicodeDecodeError, SyntaxError) as exc:
            self.problem(where, f"cannot parse {rel}: {_one_line(exc)}")
            return
        classes = _subclasses_of(tree, "Endpoint")
        if len(classes) != 1:
            found = ", ".join(classes) or "none"
            self.problem(where, f"{rel} must define exactly one Endpoint subclass (found: {found})")

    # -- tools (future-proof) ------------------------------------------------------------

    def check_tool_provider(self, rel: object) -> None:
        path = self.resolve(rel, "manifest.yaml plugins.tools", "tool provider")
        provider = self.load_mapping(path, str(rel)) if path else None
        if provider is None:
            return
        where = str(rel)
        tools = provider.get("tools") or []
        for tool in tools if isinstance(tools, list) else []:
            self.check_tool(tool, where)
        data = copy.deepcopy({**provider, "tools": []})
        model = self.validate(ToolProviderConfiguration, data, where)
        if model is not None:
            self.resolve(model.extra.python.source, where, "extra.python.source")
            self.check_icons(provider.get("identity") or {}, f"{where} identity")
        self.check_i18n(provider, where)

    def check_tool(self, rel: object, where: str) -> None:
        path = self.resolve(rel, where, "tool file")
        tool = self.load_mapping(path, str(rel)) if path else None
        if tool is None:
            return
        model = self.validate(ToolConfiguration, tool, str(rel))
        if model is not None:
            self.resolve(model.extra.python.source, str(rel), "extra.python.source")
        self.check_i18n(tool, str(rel))


def _subclasses_of(tree: ast.Module, base_name: str) -> list[str]:
    """Names of top-level classes listing ``base_name`` (or ``x.base_name``) as a base."""
    names = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for base in node.bases:
            if (isinstance(base, ast.Name) and base.id == base_name) or (
                isinstance(base, ast.Attribute) and base.attr == base_name
            ):
                names.append(node.name)
                break
    return names


# -- boot check ------------------------------------------------------------------------------


def boot_check(root: Path, entrypoint: str = "main", timeout: float = BOOT_TIMEOUT_S) -> list[str]:
    """Start the plugin as the daemon does (local mode) and wait for its first heartbeat."""
    process = PluginProcess(Workspace(), root, entrypoint=entrypoint)
    try:
        process.start(timeout=timeout)
    except (PluginCrashed, OSError) as exc:
        return [f"boot: {exc}"]
    finally:
        process.stop()
    return []


# -- CLI -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m devkit.check", description=__doc__)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="plugin root")
    parser.add_argument("--no-boot", action="store_true", help="skip starting the plugin")
    args = parser.parse_args(argv)
    problems = check_plugin(args.root, boot=not args.no_boot)
    for problem in problems:
        print(problem)
    if not problems:
        print("ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
