"""The README's Python code blocks run as written (in a scratch directory), so the
examples a user copies cannot rot."""

from __future__ import annotations

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("k", range(len(BLOCKS)))
def test_readme_python_block_runs(k, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = compile(BLOCKS[k], f"README.md python block {k + 1}", "exec")
    exec(code, {"__name__": f"readme_block_{k}"})  # noqa: S102 - the README's own examples
    out = capsys.readouterr().out
    if "certificate" in BLOCKS[k] and "print(res.info" in BLOCKS[k]:
        assert "(Boltzmann at target beta 1?)" in out
