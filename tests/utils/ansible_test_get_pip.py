"""Offline stand-in for the get-pip.py bootstrap script that ansible-test downloads.

ansible-test creates its sanity-test virtual environments without pip and then runs a get-pip.py
script that it downloads from ci-files.testing.ansible.com and caches as
~/.ansible/test/cache/get_pip_<version>.py. Where that host cannot be reached (CI here reaches
PyPI only), tests/run copies this file to that cache path when the path is missing.

Like get-pip.py it is run as ``python get_pip_X_Y.py [pip install options] pip==X.Y ...``: it
installs the pip bundled with Python (ensurepip, no network), then runs ``pip install`` with the
given arguments against the package index. ``--no-setuptools``/``--no-wheel`` are honoured.
"""

from __future__ import annotations

import subprocess
import sys


def main(argv: list[str]) -> int:
    no_setuptools = "--no-setuptools" in argv
    args = [arg for arg in argv if arg not in ("--no-setuptools", "--no-wheel")]

    # In a child process: ensurepip sets PIP_CONFIG_FILE=/dev/null in its own environment, which
    # would hide the machine's pip configuration (index, certificates) from the install below.
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
    subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
    if no_setuptools:
        subprocess.check_call([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "setuptools"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
