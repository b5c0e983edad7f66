"""Fixtures shared by every scenario's testinfra tests: any lab host, and any host's variables.

testinfra parametrizes `host` over testinfra_hosts; a test that needs two hosts at once (ping from
one, capture on the other) asks for them by name with `lab_host` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner


@pytest.fixture(scope="session")
def inventory(request: pytest.FixtureRequest) -> str:
    return request.config.option.ansible_inventory


@pytest.fixture(scope="session")
def lab_host(inventory: str) -> Callable[[str], Any]:
    hosts: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in hosts:
            hosts[name] = testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory)
        return hosts[name]

    return get


@pytest.fixture(scope="session")
def hostvars(inventory: str) -> Callable[[str], dict[str, Any]]:
    runner = AnsibleRunner(inventory)
    return runner.get_variables


@pytest.fixture(scope="session")
def group(inventory: str) -> Callable[[str], list[str]]:
    runner = AnsibleRunner(inventory)
    return runner.get_hosts
