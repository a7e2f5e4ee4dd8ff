"""Site defaults: a TOML file of option values, under the environment and the command line.

Where a value comes from, most important first: the option typed; the environment
(``QA2_<COMMAND>_<OPTION>``, e.g. ``QA2_TARSPLIT_MAX_SIZE``, as click reads it); the config
file; the built-in default.  The file is ``$QA2_CONFIG``, else
``$XDG_CONFIG_HOME/almaqa2/config.toml`` (``~/.config/almaqa2/config.toml``).  Its keys are
the options as typed, without the dashes; a table per command, top-level keys for the
options of ``qa2`` itself::

    log-file = "/var/log/almaqa2/qa2.log"

    [tarsplit]
    max-size = "5G"

    [deliver]
    web-root = "/var/www/deliveries"
    base-url = "https://arc.example.org/deliveries"

    [lock]
    dir = "/shared/locks"
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from almaqa2.errors import InputError, reason

ENV = "QA2_CONFIG"
ENV_PREFIX = "QA2"


def path() -> Path:
    """The config file: ``$QA2_CONFIG``, else the XDG place (it need not exist)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(home) / "almaqa2" / "config.toml"


def default_map(group: click.Group) -> dict[str, Any]:
    """The file's values as click's ``default_map``: {param: value, command: {param:
    value}}; InputError (naming the file, table and key) for anything it cannot use."""
    where = path()
    if not os.path.isfile(where):  # also where a directory on the way cannot be searched
        if os.environ.get(ENV):
            raise InputError(f"the config file named by {ENV} is missing", where,
                             fix=f"create it, or unset {ENV}")  # fmt: skip
        return {}
    import tomllib  # (only where there is a file: most runs have none)

    try:
        table = tomllib.loads(where.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(
            f"the config file cannot be read ({reason(exc)})", where, fix="correct it"
        ) from None
    found: dict[str, Any] = {}
    for key, value in table.items():
        command = group.commands.get(key)
        if isinstance(value, dict) and command is not None:
            found[key] = _values(command, value, where, f"[{key}]")
        else:
            found.update(_values(group, {key: value}, where, "the top level"))
    return found


def _values(
    command: click.Command, table: dict[str, Any], where: Path, part: str
) -> dict[str, Any]:
    """{param name: value} of ``table`` ({option as typed: value})."""
    names = {
        opt.lstrip("-"): param.name
        for param in command.params
        if isinstance(param, click.Option) and param.name
        for opt in param.opts
        if opt.startswith("--")
    }
    found = {}
    for key, value in table.items():
        if key not in names or isinstance(value, dict | list):
            known = ", ".join(sorted(names)) or "none"
            raise InputError(
                f"{part} of the config file has no option '{key}'",
                where,
                fix=f"use one of: {known}",
            )
        found[names[key]] = value
    return found


def sources(group: click.Group, defaults: Mapping[str, Any]) -> list[tuple[str, str, Any, str]]:
    """(command, option, value, where it comes from) of every option that is not at its
    built-in default, for ``qa2 config``; ``defaults``: ``default_map``'s, as the run has
    them."""
    rows = []
    contexts = [("qa2", group, defaults)] + [
        (name, command, defaults.get(name, {})) for name, command in sorted(group.commands.items())
    ]
    for name, command, values in contexts:
        prefix = (
            ENV_PREFIX if command is group else f"{ENV_PREFIX}_{name.upper().replace('-', '_')}"
        )
        with command.make_context(
            name, [], resilient_parsing=True, default_map=values, auto_envvar_prefix=prefix
        ) as ctx:
            for param in command.params:
                if not isinstance(param, click.Option) or not param.name:
                    continue
                source = ctx.get_parameter_source(param.name)
                if source is ParameterSource.ENVIRONMENT:
                    named = param.envvar if isinstance(param.envvar, str) else None
                    said = f"environment {named or f'{prefix}_{param.name.upper()}'}"
                elif source is ParameterSource.DEFAULT_MAP:
                    said = f"config {path()}"
                else:
                    continue
                rows.append((name, param.opts[-1], ctx.params[param.name], said))
    return rows
