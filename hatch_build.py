"""
The optional C extension (``llmcassette/_speedups.c``), compiled by hatchling's build hook with
the building interpreter's own compiler and flags (``sysconfig``), the standard library only.

Without a compiler, or when the compile fails, it warns and the package stays pure Python: every
function of the extension has a Python twin that runs instead (``llmcassette/_compiled.py``). An
editable install puts the built module in the source tree, where the package is imported from;
a wheel carries it, and is then tagged for this interpreter and platform. With
``LLMCASSETTE_PURE_PYTHON`` set, nothing is compiled.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
import warnings
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("llmcassette") / "_speedups.c"


def extension_name() -> str:
    """The file name the interpreter imports ``llmcassette._speedups`` from."""
    return "_speedups" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so")


def compile_extension(root: Path, target: Path) -> str | None:
    """Compile the extension into ``target``; None when done, else why not (the compiler's words)."""
    config = sysconfig.get_config_var
    cc = os.environ.get("CC") or config("CC")
    ldshared = os.environ.get("LDSHARED") or config("LDSHARED")
    include = config("INCLUDEPY")
    if not cc or not ldshared or not include or not (Path(include) / "Python.h").exists():
        return "no C compiler or Python headers are configured for this interpreter"
    flags = shlex.split(config("CFLAGS") or "") + shlex.split(config("CCSHARED") or "")
    with tempfile.TemporaryDirectory() as scratch:
        obj = Path(scratch) / "_speedups.o"
        built = Path(scratch) / target.name
        steps = [
            [*shlex.split(cc), *flags, f"-I{include}", "-c", str(root / SOURCE), "-o", str(obj)],
            [*shlex.split(ldshared), str(obj), "-o", str(built)],
        ]
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=300)
            except (OSError, subprocess.SubprocessError) as exc:
                return f"{step[0]} did not run: {exc}"
            if done.returncode:
                return (done.stderr or done.stdout).strip()[-2000:] or f"{step[0]} failed"
        # (moved into place whole, so an interpreter never imports a half-written file)
        os.replace(built, target)
    return None


class SpeedupsHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or os.environ.get("LLMCASSETTE_PURE_PYTHON"):
            return
        root = Path(self.root)
        name = extension_name()
        if version == "editable":
            target = root / "llmcassette" / name  # (the package is imported from the source tree)
        else:
            self._scratch = tempfile.mkdtemp(prefix="llmcassette-speedups-")
            target = Path(self._scratch) / name
        problem = compile_extension(root, target)
        if problem is not None:
            warnings.warn(
                f"llmcassette: the C extension was not built, so the package is pure Python "
                f"(slower to read a cassette cold, and as correct): {problem}",
                stacklevel=1,
            )
            return
        if version != "editable":
            build_data["force_include"][str(target)] = f"llmcassette/{name}"
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
