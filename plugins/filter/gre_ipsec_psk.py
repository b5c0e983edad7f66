# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: gre_ipsec_psk
short_description: The IKE pre-shared key of one GRE link, derived from one secret
version_added: 0.1.0
author:
  - linuxnet.gre maintainers (@linuxnet)
description:
  - "Derives the pre-shared key of the link between two hosts from one secret the user keeps (in Ansible Vault):
    C(0s) and the base64 of HMAC-SHA256(secret, C(linuxnet.gre ipsec v1), the two ends' names in sorted order),
    as strongSwan's C(swanctl.conf) takes a binary secret. Both ends derive the same key; no two links share one;
    the secret cannot be recovered from a key."
  - Rotating the secret changes every link's key. A link whose two ends hold different keys cannot establish a new
    IKE SA. The gre_mesh role makes a link's IKE SA anew where its file changed, so run it on both ends of every
    link together (not under C(--limit) across a link) when the secret changes.
  - Use it only in tasks with C(no_log) (and C(diff) off), and never put its value in a variable that is printed.
positional: first, second
options:
  _input:
    description: The secret. At least 16 characters.
    type: str
    required: true
  first:
    description: The name of one end of the link (its inventory name, or an external peer's name).
    type: str
    required: true
  second:
    description: The name of the other end.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Write the link's secret for strongSwan (never logged)
  ansible.builtin.copy:
    dest: /etc/swanctl/conf.d/secret.conf
    mode: "0600"
    content: |
      secrets {
        ike-hostb {
          secret = {{ gre_mesh_ipsec_secret | linuxnet.gre.gre_ipsec_psk('hosta', 'hostb') }}
        }
      }
  no_log: true
  diff: false
"""

RETURN = r"""
_value:
  description: C(0s) and the base64 of the 32 key bytes.
  type: str
  sample: 0sdhP8VSt1oCFS/kjDXTbI5kzzyMZSY9loU4QKZLJOYzc=
"""

import base64
import hashlib
import hmac
import typing as t

from ansible.errors import AnsibleFilterError

CONTEXT = b"linuxnet.gre ipsec v1"
MIN_SECRET = 16


def gre_ipsec_psk(secret: t.Any, first: t.Any, second: t.Any) -> str:
    if not isinstance(secret, str):
        # A vaulted string is a str subclass (AnsibleVaultEncryptedUnicode is not, on older ansible-core): str() decrypts.
        secret = str(secret) if hasattr(secret, "vault") else secret
    if not isinstance(secret, str) or len(secret) < MIN_SECRET:
        # Never the secret itself in the message.
        found = f"{len(secret)} characters" if isinstance(secret, str) else f"a {type(secret).__name__}"
        raise AnsibleFilterError(
            f"gre_ipsec_psk: the secret must be a string of at least {MIN_SECRET} characters, not {found}"
            " (for example: openssl rand -base64 32, kept with ansible-vault encrypt_string)"
        )
    ends = []
    for which, end in (("first", first), ("second", second)):
        if not isinstance(end, str) or not end.strip():
            raise AnsibleFilterError(f"gre_ipsec_psk: {which}: {end!r} is not a host name")
        ends.append(end.strip())
    if ends[0] == ends[1]:
        raise AnsibleFilterError(f"gre_ipsec_psk: a link joins two different hosts, not {ends[0]!r} to itself")
    message = b"\0".join([CONTEXT, *(end.encode() for end in sorted(ends))])
    key = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "0s" + base64.b64encode(key).decode()


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., str]]:
        return {"gre_ipsec_psk": gre_ipsec_psk}
