"""The README's Python examples run as written, and what their comments claim holds."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_python_examples_run_and_their_claims_hold(capsys):
    blocks = _python_blocks()
    assert blocks, "README.md has no python example"
    for block in blocks:
        namespace = {}
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
    printed = capsys.readouterr().out
    claimed = re.findall(r'print\(.*?\)\s+# "(.*?)"', "\n".join(blocks))
    for claim in claimed:
        assert claim in printed
