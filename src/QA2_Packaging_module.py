# -*- coding: utf-8 -*-
"""The old call, inside any CASA: ``from QA2_Packaging_module import *`` (or ``execfile``).

One file, standard library only, for every Python from 2.7 to 3.13, so that the Python a
reducer's CASA brings can import it.  Where almaqa2 itself is importable (its own Python
>= 3.11), ``QA_Packager`` and ``QA_Pipeline_Stager`` call the library directly.  Anywhere
else they run the ``qa2`` command of an almaqa2 installation with the same arguments,
show what it says as it works, print the package tree as the original did, and return
what it made; a refusal raises ``Qa2Error`` with qa2's own sentence.

``qa2`` is found as: the ``QA2`` environment variable (the path of a ``qa2``), else
``qa2`` on the PATH, else the installation that wrote this file (``qa2 legacy-module
--install DIR``).
"""

from __future__ import print_function

import json
import os
import subprocess

__all__ = ["QA_Packager", "QA_Pipeline_Stager", "Qa2Error"]

QA2_DEFAULT = None  # the qa2 of the installation that wrote this file (legacy-module)

_MISSING = (
    "qa2 (almaqa2) was not found: install it in a Python >= 3.11 (pip install almaqa2), "
    "then put its qa2 on the PATH, or set QA2=/path/to/that/venv/bin/qa2, or run "
    "'qa2 legacy-module --install DIR' from that installation to write this file with "
    "its path."
)


class Qa2Error(Exception):
    """What qa2 refused or why it failed, in its own words (``code``: its exit code)."""

    def __init__(self, sentence, code=2):
        Exception.__init__(self, sentence)
        self.code = code


class Made(dict):
    """What qa2 made, as its ``--json`` result: ``made.packpath`` or ``made["packpath"]``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)


def _library():
    """almaqa2's old calls, where this Python can import them (else None)."""
    try:
        from almaqa2.package import legacy
    except Exception:  # not installed here, or a Python too old for its syntax
        return None
    return legacy


def _qa2():
    """The ``qa2`` command to run, or Qa2Error saying how to get one."""
    named = os.environ.get("QA2")
    if named:
        if os.path.isfile(named) and os.access(named, os.X_OK):
            return named
        raise Qa2Error("QA2 names %s, which is not an executable qa2; %s" % (named, _MISSING))
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory, "qa2")
        if directory and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    if QA2_DEFAULT and os.path.isfile(QA2_DEFAULT) and os.access(QA2_DEFAULT, os.X_OK):
        return QA2_DEFAULT
    raise Qa2Error(_MISSING)


def _path(value):
    """A path as the old call took it: a trailing ``/`` allowed."""
    return value.rstrip("/") or "/"


def _run(arguments):
    """Run ``qa2 ARGUMENTS --json``: its messages straight to this terminal, its result
    read back; Qa2Error with its sentence if it does not succeed."""
    command = [_qa2()] + arguments + ["--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, universal_newlines=True)
    output = process.communicate()[0]
    try:
        result = json.loads(output)
    except ValueError:
        result = {}
    if process.returncode != 0:
        problems = result.get("problems") or [{"text": "see the messages above"}]
        sentence = problems[0].get("text", "see the messages above")
        if process.returncode == 2:
            raise Qa2Error(sentence, 2)
        raise Qa2Error("qa2 %s failed (exit %d): %s" % (arguments[0], process.returncode,
                                                         sentence), process.returncode)
    return Made(result)  # its warnings were shown as it ran


def QA_Packager(origpath, readme, packpath, append="", mode="fake", style="", PIscript="",
                noms=False, sg=None, gous=None, mous=None, sb_name=None, strict=False,
                allow_blank_header=False):
    """Package the SB reduction at ``origpath`` into ``packpath`` (``qa2 package``)."""
    library = _library()
    if library is not None:
        return library.QA_Packager(
            origpath, readme, packpath, append=append, mode=mode, style=style,
            PIscript=PIscript, noms=noms, sg=sg, gous=gous, mous=mous, sb_name=sb_name,
            strict=strict, allow_blank_header=allow_blank_header,
        )
    arguments = ["package", _path(origpath), _path(packpath), "--readme", readme,
                 "--mode", mode, "--append", append, "--style", style]
    if PIscript:
        arguments += ["--pi-script", _path(PIscript)]
    if noms:
        arguments.append("--noms")
    for option, value in (("--sg", sg), ("--gous", gous), ("--mous", mous),
                          ("--sb-name", sb_name)):
        if value:
            arguments += [option, value]
    if strict:
        arguments.append("--strict")
    if allow_blank_header:
        arguments.append("--allow-blank-header")
    made = _run(arguments)
    print("the following package was created:")
    print("\n".join(made.get("tree", [])))
    return made


def QA_Pipeline_Stager(pipeline_root, staged_root, mode="copy", PIscript="", PIPE_README=None):
    """Stage the pipeline run at ``pipeline_root`` into ``staged_root`` (``qa2 stage``)."""
    library = _library()
    if library is not None:
        return library.QA_Pipeline_Stager(pipeline_root, staged_root, mode, PIscript,
                                          PIPE_README)
    arguments = ["stage", _path(pipeline_root), _path(staged_root), "--mode", mode]
    if PIscript:
        arguments += ["--pi-script", _path(PIscript)]
    if PIPE_README:
        arguments += ["--pipe-readme", PIPE_README]
    return _run(arguments)

