"""The README's Python example runs as written and recovers the sample's orientations."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs_the_method_end_to_end():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], "README.md", "exec"), namespace)
    errors, fsc = namespace["errors"], namespace["fsc"]
    # random poses give a mean error near 90° after the harmless alignment; the method is far below
    assert errors.harmless.mean_deg < 15.0, out.getvalue()
    assert fsc.truth.best.resolution_05_a < 25.0, out.getvalue()
    assert "pose error" in out.getvalue()
