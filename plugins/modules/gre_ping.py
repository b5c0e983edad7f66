#!/usr/bin/python
# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: gre_ping
short_description: Ping the far end of many tunnels at once, each through its own interface
version_added: 0.1.0
description:
  - Sends ICMP echo requests to every address of every target, all at once, each from a socket bound to the
    target's interface, so that a reply proves the path through that tunnel and not through some other route.
    Checking a host's hundred links takes about as long as checking one.
  - Reports, per address, the requests sent and replies received, round-trip times, and the error the kernel
    gave (a missing interface, an unreachable network, a packet too large for the path with O(dont_fragment)).
  - Never fails because an address does not answer; RV(down) counts those, so a playbook can decide.
  - Uses ping sockets (no privilege needed where C(net.ipv4.ping_group_range) allows the user), else raw
    sockets, which need root.
requirements:
  - Python on the target, a version the ansible-core in use supports there (3.7 or newer with ansible-core 2.17,
    3.8 or newer from 2.18 on)
  - no command; the pings are Python's own sockets (C(SO_BINDTODEVICE), so Linux)
author:
  - linuxnet.gre maintainers (@linuxnet)
attributes:
  check_mode:
    support: full
    description: Only sends pings, which change nothing on the host; it pings in check mode too.
extends_documentation_fragment:
  - linuxnet.gre.attributes.read_only
options:
  targets:
    description:
      - What to ping. The C(peers) entries of the plan of P(linuxnet.gre.gre_plan_check#filter) have this shape,
        the same as O(linuxnet.gre.gre_probe#module:peers), so they can be given as they are.
    type: list
    elements: dict
    required: true
    suboptions:
      interface:
        description: The interface to send through (the tunnel).
        type: str
        required: true
      peer:
        description: A name for the far end, copied into the result.
        type: str
      external:
        description: Whether the far end is outside the inventory (taken as the plan gives it; not used here).
        type: bool
        default: false
      addresses:
        description:
          - The addresses to ping through it (the peer's inner addresses, IPv4 or IPv6, without prefix).
          - At least one.
        type: list
        elements: str
        default: []
  count:
    description: Echo requests per address (at most, with O(stop_when_up)), from 1 to 100.
    type: int
    default: 3
  stop_when_up:
    description:
      - Stop pinging an address at its first reply, and return as soon as every address answered. One reply is
        what makes an address up, so the verdict is the one O(count) rounds give; on links that answer, it comes
        after one round trip instead of O(count) - 1 intervals. An address that does not answer gets all
        O(count) requests. RV(results[].sent) says how many went out.
      - The role C(linuxnet.gre.gre_mesh) pings this way after building the tunnels.
    type: bool
    default: false
  interval:
    description: Seconds between two rounds of requests.
    type: float
    default: 0.2
  timeout:
    description: Seconds to wait for replies after the last round.
    type: float
    default: 2
  size:
    description: Bytes of payload per request (56 gives the usual 84-byte IPv4 packet).
    type: int
    default: 56
  dont_fragment:
    description:
      - Forbid fragmentation (the DF bit over IPv4), so that a request larger than the path MTU is refused
        instead of being split. With O(size) set to the tunnel MTU minus 28 (IPv4) this tests that full-size
        packets pass.
    type: bool
    default: false
notes:
  - Every address must answer for its target to count as up; RV(results) has each address on its own.
  - The role C(linuxnet.gre.gre_mesh) uses it as its last step.
seealso:
  - module: linuxnet.gre.gre_tunnel
"""

EXAMPLES = r"""
- name: Ping hostb's end of gre-hostb through the tunnel
  linuxnet.gre.gre_ping:
    targets:
      - interface: gre-hostb
        addresses: [10.0.0.2]
        peer: hostb
  register: pings

- name: Fail when a link is down
  ansible.builtin.assert:
    that: pings.down == 0
    fail_msg: "{{ pings.results | rejectattr('up') | map(attribute='interface') | list }} do not answer"

- name: Send full-size packets with fragmentation forbidden (tunnel MTU 1476 minus 28 bytes of headers)
  linuxnet.gre.gre_ping:
    targets:
      - {interface: gre-hostb, addresses: [10.0.0.2]}
    size: 1448
    dont_fragment: true
"""

RETURN = r"""
results:
  description: One entry per address of each target, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    peer:
      description: The target's O(targets[].peer).
      type: str
      sample: hostb
    interface:
      description: The interface the requests went through.
      type: str
      sample: gre-hostb
    address:
      description: The address pinged.
      type: str
      sample: 10.0.0.2
    sent:
      description: Echo requests sent.
      type: int
      sample: 3
    received:
      description: Echo replies received.
      type: int
      sample: 3
    rtt_ms:
      description: Round-trip times in milliseconds (C(min), C(avg), C(max)); null without replies.
      type: dict
      sample: {min: 0.41, avg: 0.52, max: 0.7}
    up:
      description: Whether any reply came back.
      type: bool
      sample: true
    error:
      description: What the kernel said when a request could not be sent or an error came back; null otherwise.
      type: str
      sample: interface gre-hostb does not exist
up:
  description: The number of targets of which every address answered.
  returned: always
  type: int
  sample: 3
down:
  description: The number of targets of which an address did not answer.
  returned: always
  type: int
  sample: 0
summary:
  description: Each entry of RV(results) in one line.
  returned: always
  type: list
  elements: str
  sample:
    - "gre-hostb to hostb 10.0.0.2: up, 3/3 replies, 0.52 ms"
    - "gre-hostc to hostc 10.0.0.6: DOWN, 0/3 replies"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linuxnet.gre.plugins.module_utils._host import run_module
from ansible_collections.linuxnet.gre.plugins.module_utils._probe.icmp import run
from ansible_collections.linuxnet.gre.plugins.module_utils._probe.spec import peers_option


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "targets": peers_option(required=True),
            "count": {"type": "int", "default": 3},
            "interval": {"type": "float", "default": 0.2},
            "stop_when_up": {"type": "bool", "default": False},
            "timeout": {"type": "float", "default": 2},
            "size": {"type": "int", "default": 56},
            "dont_fragment": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    run_module(module, lambda: run(module.params))


if __name__ == "__main__":
    main()
