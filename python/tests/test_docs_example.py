"""docs/python.md's runnable example runs as written."""
import os
import pathlib
import re
import subprocess
import sys

from conftest import TIMEOUT


def test_docs_example_runs():
    doc = pathlib.Path(__file__).resolve().parents[2] / "docs" / "python.md"
    example = re.search(r"```python\n(.*?)```", doc.read_text(), re.S).group(1)
    out = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=TIMEOUT,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("b joined: True")
    assert "{'text': 'hello', 'n': 1}" in lines and "100000" in lines
    assert "event on news {'headline': 'local delivery is immediate'}" in lines
