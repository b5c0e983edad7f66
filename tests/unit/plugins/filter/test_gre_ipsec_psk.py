# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_ipsec_psk: one link's IKE pre-shared key from the user's one secret (issue 18)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.gre.plugins.filter.gre_ipsec_psk import gre_ipsec_psk

SECRET = "0123456789abcdef-secret"
# Computed apart from this code, with OpenSSL:
#   printf 'linuxnet.gre ipsec v1\0hosta\0hostb' | openssl dgst -sha256 -hmac 0123456789abcdef-secret -binary | base64
HOSTA_HOSTB = "0sdhP8VSt1oCFS/kjDXTbI5kzzyMZSY9loU4QKZLJOYzc="


def test_the_key_is_hmac_sha256_of_the_sorted_ends_as_openssl_computes_it():
    assert gre_ipsec_psk(SECRET, "hosta", "hostb") == HOSTA_HOSTB


def test_both_ends_derive_the_same_key():
    assert gre_ipsec_psk(SECRET, "hostb", "hosta") == HOSTA_HOSTB


def test_every_link_and_every_secret_has_a_key_of_its_own():
    keys = {
        gre_ipsec_psk(SECRET, "hosta", "hostb"),
        gre_ipsec_psk(SECRET, "hosta", "hostc"),
        gre_ipsec_psk(SECRET, "hostb", "hostc"),
        gre_ipsec_psk(SECRET + "2", "hosta", "hostb"),
        # "ho" + "sta\0hostb" must not meet "hosta" + "\0hostb": the names are separated
        gre_ipsec_psk(SECRET, "hostahost", "b"),
    }
    assert len(keys) == 5


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("short-secret", "not 12 characters"),
        (None, "not a NoneType"),
        (12345678901234567890, "not a int"),
    ],
)
def test_a_weak_or_missing_secret_is_refused_without_showing_it(secret, message):
    with pytest.raises(AnsibleFilterError) as error:
        gre_ipsec_psk(secret, "hosta", "hostb")
    assert str(error.value).startswith("gre_ipsec_psk: the secret must be a string of at least 16 characters, ")
    assert message in str(error.value)
    assert "short-secret" not in str(error.value) and "1234567890" not in str(error.value)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ("hosta", "hosta", "gre_ipsec_psk: a link joins two different hosts, not 'hosta' to itself"),
        ("", "hostb", "gre_ipsec_psk: first: '' is not a host name"),
        ("hosta", None, "gre_ipsec_psk: second: None is not a host name"),
    ],
)
def test_the_ends_must_be_two_host_names(first, second, message):
    with pytest.raises(AnsibleFilterError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        gre_ipsec_psk(SECRET, first, second)
