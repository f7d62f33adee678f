"""``make typecheck`` sees fedrec's own modules, not ``Any``.

setuptools' editable install maps ``fedrec.server`` to ``server/`` (and so on) by an import
hook mypy cannot see, and ``ignore_missing_imports`` would then make every fedrec import
``Any`` without a word. The Makefile checks a link tree laid out as the installed package
instead; this builds the same tree and shows that mypy, through it, rejects a name fedrec
does not have and a call of a typed fedrec function with the wrong type.
"""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The Makefile's typecheck recipe: what fedrec/ holds itself, and the folders mapped into it.
OWN = ("__init__.py", "__main__.py", "simulation")
MAPPED = ("cli", "server", "client", "shared", "simulations")

SNIPPETS = {
    "missing_name.py": "from fedrec.shared.checkpoint import NOPE_DOES_NOT_EXIST\n",
    "wrong_type.py": "from fedrec.shared.checkpoint import run_id\n\nrun_id(123)\n",
    "resolved.py": "from fedrec.shared.checkpoint import run_id\n\nreveal_type(run_id)\n",
}


def _link_tree(root: Path) -> Path:
    package = root / "fedrec"
    package.mkdir(parents=True)
    for name in OWN:
        (package / name).symlink_to(ROOT / "fedrec" / name)
    for name in MAPPED:
        (package / name).symlink_to(ROOT / name)
    return root


def test_mypy_resolves_fedrec_imports_through_the_link_tree(tmp_path: Path) -> None:
    tree = _link_tree(tmp_path / "tree")
    snippets = tmp_path / "snippets"
    snippets.mkdir()
    for name, text in SNIPPETS.items():
        (snippets / name).write_text(text)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "cache"),
            # fedrec's modules are read for their types, their own errors are not the point;
            # third-party packages are left out (Any), which keeps this fast.
            "--follow-imports=silent",
            "--no-site-packages",
            *sorted(str(snippets / name) for name in SNIPPETS),
        ],
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out

    def lines(name: str) -> list[str]:
        return [line for line in out.splitlines() if Path(line.split(":", 1)[0]).name == name]

    missing = lines("missing_name.py")
    assert any(
        re.search(r'Module "fedrec\.shared\.checkpoint" has no attribute', line)
        and "[attr-defined]" in line
        for line in missing
    ), out
    wrong = lines("wrong_type.py")
    assert any(
        '"run_id" has incompatible type "int"; expected "Path"' in line and "[arg-type]" in line
        for line in wrong
    ), out
    # The real signature, not Any: the import resolved to shared/checkpoint.py.
    resolved = lines("resolved.py")
    assert any("def (run_dir: pathlib.Path) -> str" in line for line in resolved), out
    assert not any("error" in line for line in resolved), out


def test_the_link_tree_is_the_installed_layout() -> None:
    """The tree above, the Makefile's and pyproject's package-dir map the same folders."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        package_dir = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    assert package_dir == {"fedrec": "fedrec", **{f"fedrec.{d}": d for d in MAPPED}}
    own = {p.name for p in (ROOT / "fedrec").iterdir() if p.name != "__pycache__"}
    assert own == set(OWN)
    makefile = (ROOT / "Makefile").read_text()
    assert f"for f in {' '.join(OWN)}; do" in makefile
    assert f"for d in {' '.join(MAPPED)}; do" in makefile
