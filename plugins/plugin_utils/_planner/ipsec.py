# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: the planner's part of GRE over IPsec.

A link with ``ipsec`` (``gre_mesh_ipsec``, or ``ipsec`` on the link in ``gre_mesh_links``) gets
ESP in transport mode between its two underlay addresses, keyed by IKEv2 with a pre-shared key
that each end derives from the one secret the user keeps (``gre_mesh_ipsec_secret``, in Ansible
Vault) and the two ends' names (the gre_ipsec_psk filter). So both ends must hold the same secret,
and both must be inventory hosts: the role configures IPsec only where it runs. The secret is
checked (set, long enough, the same on both ends) before any host changes, and never shown.
"""

from __future__ import annotations

import typing as t

from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import Link, Node, Problems
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.nodes import FAILED, read_var

SECRET = "gre_mesh_ipsec_secret"
# As the gre_ipsec_psk filter asks: a key derived from a short secret is as weak as the secret.
MIN_SECRET = 16
# An IKE connection is named after its tunnel: linuxnet-gre-hostb (strongSwan's log and swanctl's
# output name it).
CONNECTION_PREFIX = "linuxnet-"
SECRET_HINT = "for example the output of `openssl rand -base64 32`, kept with `ansible-vault encrypt_string`"


def check_external_ends(links: list[Link], problems: Problems) -> None:
    """A link with IPsec to an external peer: the role cannot configure IKE on the peer's side."""
    for link in links:
        if not link.ipsec:
            continue
        for node in (link.low, link.high):
            if node.external:
                problems.add(
                    f"{link.label}: ipsec is on, but {node.label} is outside the inventory, where the role cannot "
                    "configure IKE and ESP; set ipsec: false on this link in gre_mesh_links (and protect it by other "
                    "means), or make the peer an inventory host"
                )


def secret_text(value: t.Any) -> str | None:
    """The secret as text, a vaulted value decrypted (str() decrypts it); None when it is no string."""
    if isinstance(value, str):
        return str(value)
    if hasattr(value, "_ciphertext") or hasattr(value, "vault"):
        return str(value)
    return None


def check_secrets(links: list[Link], hostvars: t.Mapping[str, t.Mapping[str, t.Any]], problems: Problems) -> None:
    """Both ends of every IPsec link hold the same secret of at least MIN_SECRET characters; never shown."""
    secrets: dict[str, str | None] = {}
    for link in links:
        if not link.ipsec or link.low.external or link.high.external:
            continue
        for node in (link.low, link.high):
            if node.name not in secrets:
                secrets[node.name] = read_secret(node, link, hostvars[node.name], problems)
        low, high = secrets[link.low.name], secrets[link.high.name]
        if low is not None and high is not None and low != high:
            problems.add(
                f"{link.label}: ipsec is on, but hosts {link.low.name} and {link.high.name} have different values of "
                f"{SECRET} (not shown), so their keys for this link would differ and IKE would fail; give both the same "
                "secret (keep it in group_vars/all, or in the variables of a group that holds both)"
            )


def read_secret(node: Node, link: Link, host_vars: t.Mapping[str, t.Any], problems: Problems) -> str | None:
    """The host's secret, or None with the problem recorded (each host's once: it is read once per host)."""
    ignored = Problems()
    value = read_var(host_vars, SECRET, ignored)
    if value is FAILED:
        # The template's error may quote the secret's own text: say only where it failed.
        problems.add(f"host {node.name}: {SECRET}: its value could not be templated (the error is not shown)")
        return None
    text = secret_text(value)
    if value is None or (text is not None and not text.strip()):
        problems.add(
            f"host {node.name}: {SECRET} is not set, but its {link.label} has ipsec on: set it to one secret for "
            f"every host ({SECRET_HINT})"
        )
        return None
    if text is None:
        problems.add(f"host {node.name}: {SECRET} must be a string, not {type(value).__name__} ({SECRET_HINT})")
        return None
    if len(text) < MIN_SECRET:
        problems.add(
            f"host {node.name}: {SECRET} is {len(text)} characters long; it must be at least {MIN_SECRET} "
            f"({SECRET_HINT})"
        )
        return None
    return text


def ipsec_entry(node: Node, link: Link, tunnel: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """What the role configures for one IPsec link on one end: the IKE connection of the tunnel.

    ``ends`` are the two hosts' names in sorted order (the key's derivation). ``initiate`` is true
    on the first of them only: the end that establishes IKE before the pings of the run, so that the
    two ends do not both start it at the same moment.
    """
    peer = link.peer_of(node)
    ends = sorted((node.name, peer.name))
    return {
        "name": tunnel["name"],
        "connection": f"{CONNECTION_PREFIX}{tunnel['name']}",
        "peer": peer.name,
        "local": tunnel["local"],
        "remote": tunnel["remote"],
        "ends": ends,
        "initiate": ends[0] == node.name,
    }
