"""Issue 19: ``QA2_Packaging_module.py`` as one standalone file for any CASA's Python.

Checked with vermin and ``ast`` for the old Pythons it must run in; run for real in a fresh
venv of this machine's Python with nothing installed (the subprocess path, through the real
``qa2`` of this project's venv) and in the project's venv (the direct path); and as
``qa2 legacy-module --install`` writes it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from almaqa2.cli import main
from test_stage import PROJECT, build_run

from conftest import CASES, Case, listing, make_case

MODULE = Path(__file__).parents[1] / "src" / "QA2_Packaging_module.py"
QA2 = Path(sys.executable).parent / "qa2"  # this project's, in its venv


def test_it_runs_in_python_2_7_and_3_0_on_with_the_standard_library_only() -> None:
    vermin = Path(sys.executable).parent / "vermin"
    done = subprocess.run(
        [str(vermin), "--no-tips", "--violations", "-t=2.7-", "-t=3.0-", str(MODULE)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    said = subprocess.run([str(vermin), "--no-tips", str(MODULE)], capture_output=True, text=True)
    assert "Minimum required versions: 2.6, 3.0" in said.stdout, said.stdout
    tree = ast.parse(MODULE.read_text(), feature_version=(3, 6))
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in top if isinstance(n, ast.ImportFrom) and n.module}
    assert names <= set(sys.stdlib_module_names) | {"__future__"}, names
    inner = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n not in top]
    assert [n.module for n in inner] == ["almaqa2.package"], "only the guarded direct path"


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv of this machine's Python with nothing installed (not even pip)."""
    where = tmp_path_factory.mktemp("bare") / "venv"
    venv.create(where, with_pip=False, system_site_packages=False)
    python = where / "bin" / "python"
    found = subprocess.run([str(python), "-c", "import almaqa2"], capture_output=True)
    assert found.returncode != 0, "almaqa2 must not be importable in the bare venv"
    return python


CALL = """
import json, sys
namespace = {"__name__": "casa_session"}
exec(open(sys.argv[1]).read(), namespace)  # as execfile does
try:
    made = namespace[sys.argv[2]](**json.loads(sys.argv[3]))
except namespace["Qa2Error"] as exc:
    print(json.dumps({"error": str(exc), "code": exc.code}))
else:
    print(json.dumps({"made": made}))
"""


def _in(python: Path, module: Path, call: str, kwargs: dict, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [str(python), "-c", CALL, str(module), call, json.dumps(kwargs)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    *printed, last = done.stdout.splitlines()
    return {**json.loads(last), "printed": printed, "stderr": done.stderr}


def _env(**extra: str) -> dict[str, str]:
    """No qa2 on the PATH (only the system's directories), plus ``extra``."""
    return {"PATH": "/usr/bin:/bin", "HOME": os.environ["HOME"], **extra}


def _manifest(package: Path) -> list[str]:
    lines = (package / "manifest.md5").read_text().splitlines()
    return [line for line in lines if ".almaqa2.json" not in line]  # the marker: its time


def _packager_kwargs(case: Case, packpath: Path) -> dict:
    argv, _ = case.commands("copy")
    options = dict(zip(argv[3::2], argv[4::2], strict=False))
    kwargs = {"origpath": str(case.origpath) + "/", "readme": str(case.readme),
              "packpath": str(packpath), "mode": "copy", "style": options["--style"]}  # fmt: skip
    legacy = {"--pi-script": "PIscript", "--sg": "sg", "--gous": "gous", "--mous": "mous"}
    kwargs |= {legacy[o]: value for o, value in options.items() if o in legacy}
    return kwargs


@pytest.mark.parametrize("name", CASES)
def test_the_old_call_in_a_bare_python_gives_the_clis_package(
    name: str, bare_python: Path, tmp_path: Path
) -> None:
    case = make_case(name, tmp_path)
    argv, _ = case.commands("copy")
    assert main(argv) == 0
    bridged = tmp_path / "bridged" / case.packpath.name
    bridged.parent.mkdir()
    found = _in(bare_python, MODULE, "QA_Packager", _packager_kwargs(case, bridged),
                _env(QA2=str(QA2)))  # fmt: skip
    assert "made" in found, found
    assert found["made"]["packpath"] == str(bridged)
    assert listing(bridged) == listing(case.packpath)
    assert _manifest(bridged) == _manifest(case.packpath)
    assert found["printed"][0] == "the following package was created:"
    assert found["printed"][1] == f"{case.packpath.name}/"  # the tree, from the project down


def test_the_stager_in_a_bare_python_gives_the_clis_staging(
    bare_python: Path, tmp_path: Path
) -> None:
    run = build_run(tmp_path)
    for side in ("cli", "bridged"):
        (tmp_path / side).mkdir()
    assert main(["stage", str(run), str(tmp_path / "cli" / PROJECT)]) == 0
    kwargs = {"pipeline_root": str(run), "staged_root": str(tmp_path / "bridged" / PROJECT)}
    found = _in(bare_python, MODULE, "QA_Pipeline_Stager", kwargs, _env(QA2=str(QA2)))
    assert "made" in found, found
    assert listing(tmp_path / "bridged" / PROJECT) == listing(tmp_path / "cli" / PROJECT)


def test_bad_input_raises_with_the_clis_sentence(bare_python: Path, tmp_path: Path) -> None:
    case = make_case("flat", tmp_path)
    kwargs = _packager_kwargs(case, case.packpath)
    kwargs["origpath"] = str(tmp_path / "no-such-reduction")
    found = _in(bare_python, MODULE, "QA_Packager", kwargs, _env(QA2=str(QA2)))
    assert found["code"] == 2
    assert (
        found["error"].startswith("origpath not found: ")
        and "reduction directory" in found["error"]
    )
    assert not case.packpath.exists()


def test_without_qa2_the_message_says_what_to_do(bare_python: Path, tmp_path: Path) -> None:
    case = make_case("flat", tmp_path)
    found = _in(bare_python, MODULE, "QA_Packager", _packager_kwargs(case, case.packpath),
                _env())  # fmt: skip
    assert "qa2 (almaqa2) was not found" in found["error"]
    assert "pip install almaqa2" in found["error"] and "QA2=" in found["error"]
    found = _in(bare_python, MODULE, "QA_Packager", _packager_kwargs(case, case.packpath),
                _env(QA2=str(tmp_path / "nothing")))  # fmt: skip
    assert "QA2 names" in found["error"] and str(tmp_path / "nothing") in found["error"]


def test_in_the_projects_venv_the_library_is_called_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import QA2_Packaging_module as bridge
    from almaqa2.package.packager import Result

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("the direct path runs no qa2 process")

    monkeypatch.setattr(bridge.subprocess, "Popen", no_subprocess)
    case = make_case("nrao", tmp_path)
    argv, _ = case.commands("copy")
    assert main(argv) == 0
    direct = tmp_path / "direct" / case.packpath.name
    direct.parent.mkdir()
    result = bridge.QA_Packager(**_packager_kwargs(case, direct))
    assert isinstance(result, Result) and result.packpath == direct
    assert listing(direct) == listing(case.packpath)
    assert _manifest(direct) == _manifest(case.packpath)


def test_legacy_module_install_writes_a_working_module(
    bare_python: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    casa = tmp_path / "dot-casa"
    assert main(["legacy-module", "--install", str(casa), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    module = casa / "QA2_Packaging_module.py"
    assert written["file"] == str(module) and written["qa2"] == str(QA2)
    vermin = Path(sys.executable).parent / "vermin"
    checked = subprocess.run(
        [str(vermin), "--no-tips", "--violations", "-t=2.7-", "-t=3.0-", str(module)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout
    case = make_case("flat", tmp_path)
    found = _in(bare_python, module, "QA_Packager", _packager_kwargs(case, case.packpath),
                _env())  # no QA2, no qa2 on the PATH: the installation that wrote it  # fmt: skip
    assert "made" in found, found
    assert (case.packpath / "manifest.md5").is_file()
    assert main(["legacy-module", "--print"]) == 0
    assert capsys.readouterr().out == module.read_text()


def test_a_directory_in_the_way_of_the_module_is_named_and_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory where the module is to be: the rename of the draft over it failed,
    said as 'Is a directory copying <draft> to <module>; fix this' (now 'making ... from')."""
    casa = tmp_path / "dot-casa"
    (casa / "QA2_Packaging_module.py").mkdir(parents=True)
    (casa / "QA2_Packaging_module.py" / "kept.txt").write_text("mine\n")
    capsys.readouterr()
    assert main(["legacy-module", "--install", str(casa)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    module = casa / "QA2_Packaging_module.py"
    assert (
        f"a directory is in the way of this file, which is never written into it: {module};" in said
    )
    assert "making" not in said and "Traceback" not in said
    assert (module / "kept.txt").read_text() == "mine\n"
    assert not list(casa.glob(".*almaqa2-part"))
