# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to the linuxnet.gre collection; runs on the controller only: the planner's view of Ansible's hostvars.

The filters hand the planner (plugins/plugin_utils/_planner) plain mappings: ``hostvars`` wrapped so
that a host's variables are gathered once and templated when read, each failure naming the host
and the variable, and ``call_planner`` turns the planner's one error into the filter's.
"""

from __future__ import annotations

import collections.abc as c
import difflib
import json
import typing as t

import jinja2
from ansible import constants as C
from ansible.errors import AnsibleError, AnsibleFilterError
from ansible.module_utils.compat.version import LooseVersion
from ansible.release import __version__ as ansible_core_version

from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import MeshError, VariableError
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import DEFAULTS

# Before 2.19, ansible-core templates hostvars[host][name] with fail_on_undefined=False: a template that
# uses an undefined variable comes back as its own text ("{{ no_such_var }}"), and only a later check
# ("is not an IP address") would notice. 2.19 raises, or returns an Undefined marker.
HOSTVARS_HIDE_UNDEFINED = LooseVersion(ansible_core_version) < LooseVersion("2.19")


class HostView(c.Mapping):
    """One host's variables, each templated when read; a failed template names the host and the variable."""

    def __init__(self, host: str, variables: t.Mapping[str, t.Any]) -> None:
        self._host = host
        self._variables = variables

    def __getitem__(self, key: str) -> t.Any:
        try:
            value = self._read(key)
        except KeyError:
            raise
        except AnsibleError as exc:
            raise VariableError(self._host, key, str(exc.message)) from exc
        if isinstance(value, jinja2.Undefined):  # ansible-core 2.19 returns a marker instead of raising
            raise VariableError(self._host, key, undefined_reason(value))
        return value

    def _read(self, key: str) -> t.Any:
        """The variable, templated: before 2.19 as HostVarsVars does it, with the host's templar, but failing on undefined."""
        templar = getattr(self._variables, "_templar", None) if HOSTVARS_HIDE_UNDEFINED else None
        raw = getattr(self._variables, "_vars", None)
        if templar is None or raw is None:  # 2.19 and later, or a plain mapping
            return self._variables[key]
        return templar.template(raw[key], fail_on_undefined=True, static_vars=C.INTERNAL_STATIC_VARS)

    def __contains__(self, key: object) -> bool:
        return key in self._variables

    def __iter__(self) -> t.Iterator[str]:
        return iter(self._variables)

    def origin(self, key: str) -> str | None:
        """The file and line the variable was read from, where ansible-core tags values with it (2.19 and later)."""
        try:
            from ansible._internal._datatag._tags import Origin  # noqa: PLC0415  (2.19+; private, so guarded)

            tag = Origin.get_tag(self._variables[key])
        except Exception:  # noqa: BLE001  (older ansible-core, or a value without a tag: no origin to tell)
            return None
        return str(tag) if tag is not None and getattr(tag, "path", None) else None

    def __len__(self) -> int:
        return len(self._variables)


def undefined_reason(value: jinja2.Undefined) -> str:
    try:
        str(value)
    except AnsibleError as exc:
        return str(exc.message)
    except Exception as exc:  # jinja2's own UndefinedError
        return str(exc)
    return "is undefined"


class HostVarsView(c.Mapping):
    """Ansible's hostvars for the planner: a host's variables are gathered only when the planner asks for them.

    Gathering them is what costs (``hostvars[host]`` merges every source of the host's variables anew),
    so each host's are gathered once, however many times the planner reads them.
    """

    def __init__(self, hostvars: t.Mapping[str, t.Any]) -> None:
        self._hostvars = hostvars
        self._views: dict[str, HostView] = {}

    def __getitem__(self, host: str) -> HostView:
        view = self._views.get(host)
        if view is None:
            view = self._views[host] = HostView(host, self._hostvars[host])
        return view

    def __contains__(self, host: object) -> bool:
        return host in self._hostvars

    def __iter__(self) -> t.Iterator[str]:
        return iter(self._hostvars)

    def __len__(self) -> int:
        return len(self._hostvars)


# The long lists of a host's plan, each one JSON text in gre_plan_check's packed form.
PACKED = ("tunnels", "peers", "ipsec")


def pack(host_plan: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A host's plan as gre_plan_check returns it with packed=true: its long lists each as one JSON text."""
    return {
        key: json.dumps(value, separators=(",", ":")) if key in PACKED else value for key, value in host_plan.items()
    }


def unpack(host_plan: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A host's plan, packed or not, with its long lists as lists."""
    return {
        key: json.loads(value) if key in PACKED and isinstance(value, str) else value
        for key, value in host_plan.items()
    }


def checked_plan(name: str, plan: t.Any) -> dict[str, t.Any]:
    """A filter that reads the plan takes gre_plan_check's result, which has each planned host under ``hosts``.

    Returned with each host's long lists as lists, whether packed (JSON text) or not.
    """
    if not isinstance(plan, c.Mapping) or not isinstance(plan.get("hosts"), c.Mapping):
        raise AnsibleFilterError(f"{name}: plan must be the result of linuxnet.gre.gre_plan_check (with hosts)")
    try:
        hosts = {
            host: unpack(host_plan) if isinstance(host_plan, c.Mapping) else host_plan
            for host, host_plan in plan["hosts"].items()
        }
    except ValueError as error:
        raise AnsibleFilterError(f"{name}: plan's hosts hold text that is not a packed list ({error})") from None
    return {**plan, "hosts": hosts}


def check_inventory(name: str, hostvars: t.Any, groups: t.Any) -> None:
    if not isinstance(hostvars, c.Mapping):
        raise AnsibleFilterError(f"linuxnet.gre.{name}: the input must be hostvars, not {type(hostvars).__name__}")
    if not isinstance(groups, c.Mapping):
        raise AnsibleFilterError(
            f"linuxnet.gre.{name}: groups must be the inventory's groups, not {type(groups).__name__}"
        )


def call_planner(
    name: str,
    function: t.Callable[..., dict[str, t.Any]],
    hostvars: t.Any,
    groups: t.Any,
    *args: t.Any,
    **settings: t.Any,
) -> dict[str, t.Any]:
    """Run a planner entry point for the filter ``name``; its errors become the filter's."""
    check_inventory(name, hostvars, groups)
    check_setting_names(name, settings)
    try:
        return function(HostVarsView(hostvars), groups, *args, **{**DEFAULTS, **settings})
    except MeshError as exc:
        raise AnsibleFilterError(exc.msg) from None


def check_setting_names(name: str, settings: t.Mapping[str, t.Any]) -> None:
    """A topology setting the planner does not know is a typo: say so, with the closest name."""
    for option in settings:
        if option not in DEFAULTS:
            close = difflib.get_close_matches(option, list(DEFAULTS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise AnsibleFilterError(f"linuxnet.gre.{name}: {option!r} is no option of the filter{hint}")
