"""The README works as written: every shell block after the first runs, in order, on a fresh
store (the first block is `make demo` / `make test`, which CI runs itself)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)


def _blocks() -> list[str]:
    return BLOCK.findall((REPO / "README.md").read_text())


def test_first_block_is_the_two_fresh_machine_commands():
    first = [line.split("#")[0].strip() for line in _blocks()[0].splitlines()]
    assert [c for c in first if c] == ["make demo", "make test"]
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_readme_blocks_run_as_written(data_dir, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(REPO / "examples", work / "examples")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["FLEETNAS_DB"] = str(tmp_path / "readme.db")
    env["FLEETNAS_DATA_DIR"] = str(data_dir)
    for block in _blocks()[1:]:
        done = subprocess.run(
            ["bash", "-e", "-c", block], cwd=work, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"README block failed:\n{block}\n{done.stdout}\n{done.stderr}"
    assert (work / "plan.json").exists() and (work / "report.html").exists()
