"""The layers of design.md hold: import-linter's contracts (pyproject.toml) are kept."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_import_hides_inside_a_function_without_saying_why():
    """A function-level import is allowed only with a comment on the same line or the line above."""
    offenders = []
    packages = ("yahealthy_crm", "compliance", "sync", "profiles", "activities", "goals", "coaching", "demo", "webapp")
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            lines = path.read_text().splitlines()
            for number, line in enumerate(lines):
                stripped = line.lstrip()
                nested = line.startswith((" ", "\t")) and stripped.startswith(("import ", "from "))
                if nested and "#" not in line and not lines[number - 1].lstrip().startswith("#"):
                    offenders.append(f"{path.relative_to(ROOT)}:{number + 1}: {stripped}")
    assert offenders == []
