# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts, outside Ansible: gre_firewall's converge at boot.

gre_firewall copies this file, with the module_utils it imports, under ``/usr/local/lib/linuxnet-gre``
(``_firewall_persist``), and ``linuxnet-gre-firewall.service`` runs it after the host's own firewall
has loaded its rules (at boot, and again when that firewall is restarted or reloaded through
systemd): ``python3 -I -S THIS_FILE SETTINGS``, SETTINGS being the JSON of the module's parameters in
its last run. It converges the packet filter exactly as the module would, with nothing but the
standard library: a firewall reloaded from its files has lost the collection's rules, and gets them
back; one that still has them is left alone.

Where firewalld runs, it first waits for firewalld to have built its rules: firewalld is a
``Type=dbus`` service, "started" for systemd once it holds its D-Bus name, which it takes before
building them, so the unit (ordered after it) would find an input that nothing filters yet.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import typing as t

if __name__ == "__main__":  # run as a file: the copy's root (five levels up) holds ansible_collections/
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 5)))

from ansible_collections.linuxnet.gre.plugins.module_utils._firewall import converge  # noqa: E402
from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError, Host  # noqa: E402

TAG = "linuxnet-gre-firewall"
FIREWALLD_WAIT = 90.0  # seconds; firewalld took 2 to 6 s to build its rules on the lab's guests


class Commands:
    """What _host.Host needs of an AnsibleModule (get_bin_path), without Ansible: at boot the host has none."""

    @staticmethod
    def get_bin_path(program: str, opt_dirs: t.Sequence[str] = ()) -> str | None:
        return shutil.which(program, path=os.pathsep.join([os.environ.get("PATH", os.defpath), *opt_dirs]))


def say(stream: t.TextIO, text: str) -> None:
    """One line to the journal (the unit's standard output or error)."""
    stream.write(f"{TAG}: {text}\n")


def wait_for_firewalld(host: Host, timeout: float = FIREWALLD_WAIT, pause: float = 0.5) -> str | None:
    """Where firewalld is starting or running, wait until ``firewall-cmd --state`` says running.

    None when there is nothing to wait for (or it answered); else what went wrong, in words.
    """
    if host.which("firewall-cmd") is None:
        return None
    _rc, out, _err = host.run(["systemctl", "is-active", "firewalld.service"])
    if out.strip() not in ("active", "activating", "reloading"):
        return None
    deadline = time.monotonic() + timeout
    while True:
        rc, out, err = host.run(["firewall-cmd", "--state"])
        if rc == 0:
            return None
        if time.monotonic() >= deadline:
            return f"firewalld did not say running within {timeout:.0f} s: {(err or out).strip() or f'exit code {rc}'}"
        time.sleep(pause)


def main(argv: list[str]) -> int:
    """Converge with the settings in the file ARGV[1]; print what changed. 0, or 1 with the reason."""
    if len(argv) != 2:
        say(sys.stderr, f"usage: {argv[0]} SETTINGS.json")
        return 2
    try:
        with open(argv[1], encoding="utf-8") as handle:
            settings = json.load(handle)
        host = Host(Commands())
        late = wait_for_firewalld(host)
        if late:
            say(sys.stderr, late + "; going on")
        result = converge(host, settings, check_mode=False, diff=False)
    except (OSError, ValueError) as exc:
        say(sys.stderr, f"cannot read {argv[1]}: {exc}")
        return 1
    except GreError as exc:
        say(sys.stderr, exc.msg)
        return 1
    if result["changed"]:
        say(sys.stdout, "put back: " + "; ".join(result["commands"]))
    else:
        say(sys.stdout, "nothing to do, the rules are in place")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
