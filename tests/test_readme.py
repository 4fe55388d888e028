"""The README works as written: every shell block after the first runs, in order, on a fresh
store in a fresh folder (the first block is `make demo` / `make test`, which CI runs itself),
prints the lines of the ```text block that follows it, and writes nothing but under ``$OUT``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```bash\n(.*?)```(?:\n```text\n(.*?)```)?", re.DOTALL)
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")
TMP_PATH = re.compile(r"/tmp/\S*?/")


def _blocks() -> list[tuple[str, str]]:
    return BLOCK.findall((REPO / "README.md").read_text())


def expected_pattern(line: str) -> re.Pattern[str]:
    """A documented output line as a pattern: numbers and temporary folders may differ."""
    out, pos = [], 0
    for m in re.finditer(f"{NUMBER.pattern}|{TMP_PATH.pattern}", line):
        out.append(re.escape(line[pos : m.start()]))
        out.append(r"\S*?/" if m.group().startswith("/") else NUMBER.pattern)
        pos = m.end()
    out.append(re.escape(line[pos:]))
    return re.compile("".join(out))


def test_expected_pattern_lets_numbers_and_temporary_folders_vary():
    pat = expected_pattern("wrote 12 rows to /tmp/tmp.Zc9/my.csv (1,392,717 bytes, 2.3 s)")
    assert pat.search("wrote 7 rows to /tmp/pytest-1/tmp/tmp.AB/my.csv (1,401 bytes, 10 s)")
    assert not pat.search("wrote 7 rows into /tmp/tmp.AB/my.csv (1,401 bytes, 10 s)")


def test_first_block_is_the_two_fresh_machine_commands():
    first = [line.split("#")[0].strip() for line in _blocks()[0][0].splitlines()]
    assert [c for c in first if c] == ["make demo", "make test"]
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


@pytest.mark.slow
def test_readme_blocks_run_as_written(data_dir, tmp_path, agent_port_taken):
    """Runs while 127.0.0.1:8765, the agent's default port, is held by another listener (the
    suite's own, tests/conftest.py, or another agent): a block that used it fails."""
    work = tmp_path / "work"
    shutil.copytree(REPO / "examples", work / "examples")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["FLEETNAS_DB"] = str(tmp_path / "readme.db")
    env["FLEETNAS_DATA_DIR"] = str(data_dir)
    env["TMPDIR"] = str(tmp)
    env.pop("FLEETNAS_AGENT_TOKEN", None)
    blocks = _blocks()[1:]
    setup = blocks[0][0]
    assert "export OUT=$(mktemp -d)" in setup and not blocks[0][1]
    timings = []
    for block, expected in blocks[1:]:
        t0 = time.perf_counter()
        done = subprocess.run(
            ["bash", "-e", "-c", setup + block], cwd=work, env=env, capture_output=True,
            text=True, timeout=600,
        )  # fmt: skip
        timings.append((block.splitlines()[0], time.perf_counter() - t0))
        printed = done.stdout + done.stderr
        assert done.returncode == 0, f"README block failed:\n{block}\n{printed}"
        for line in filter(str.strip, expected.splitlines()):
            assert expected_pattern(line).search(printed), (
                f"README block:\n{block}\ndid not print a line like {line!r}:\n{printed}"
            )
    print("\n".join(f"{s:6.1f} s  {first}" for first, s in timings))
    # everything went to $OUT: the folder the blocks ran in holds what it held before
    assert sorted(p.name for p in work.iterdir()) == ["examples"]
    assert len(list(tmp.glob("*/plan.json"))) == 1 and len(list(tmp.glob("*/report.html"))) == 1
