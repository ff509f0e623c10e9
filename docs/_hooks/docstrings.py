"""mkdocs hook: every public name of cljax has a docstring, and the API pages list them all.

With ``mkdocs build --strict`` each warning below fails the build: a public function or class
(a name in the ``__all__`` of ``cljax`` or of one of its public subpackages) without a
docstring, or a name of ``cljax.__all__`` that no API page renders.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from pathlib import Path

log = logging.getLogger("mkdocs.plugins.cljax_docstrings")

PACKAGES = ("cljax", "cljax.projection", "cljax.solvers", "cljax.estimators", "cljax.methods",
            "cljax.distributed")


def _public(module_name):
    module = importlib.import_module(module_name)
    for name in getattr(module, "__all__", ()):
        yield name, getattr(module, name)


def on_config(config):
    for package in PACKAGES:
        for name, obj in _public(package):
            if inspect.ismodule(obj):
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if not (inspect.getdoc(obj) or "").strip():
                log.warning(f"{package}.{name} has no docstring")
    api = Path(config["docs_dir"]) / "api"
    rendered = set()
    for page in api.glob("*.md"):
        for target in re.findall(r"^::: *([\w.]+)", page.read_text(), flags=re.M):
            rendered.add(target)
            if target in PACKAGES:
                rendered.update(f"{target}.{n}" for n, _ in _public(target))
    root = importlib.import_module("cljax")
    for name in root.__all__:
        obj = getattr(root, name)
        home = f"{obj.__name__}" if inspect.ismodule(obj) else None
        owners = {f"{p}.{name}" for p in PACKAGES}
        if home in rendered or home in PACKAGES:
            continue
        if not owners & rendered:
            log.warning(f"cljax.{name} (in cljax.__all__) is on no API page")
    return config
