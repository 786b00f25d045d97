"""cloudstats test data: instances of the personas' project def-owner (owner and member are its
members, tests/cloudstats/projects.yaml) and of another project, labelled as Debian's
prometheus-libvirt-exporter (the default preset) labels them.
"""

from __future__ import annotations

WEB = {
    "uuid": "5b2a6f2e-1c1d-4a8e-9c55-0f6f3b1e0a01",
    "name": "web-1",
    "project_name": "def-owner",
    "flavor": "c2-128m",
}
IDLE = {
    "uuid": "9d4c0a2b-3e5f-4a7d-b0c1-2d3e4f5a6b03",
    "name": "idle-1",
    "project_name": "def-owner",
    "flavor": "c1-96m",
}
DB = {"uuid": "7c3b8e1f-2d4a-4b6c-8e9f-1a2b3c4d5e02", "name": "db-1", "project_name": "chem", "flavor": "c1-96m"}
UP = [({"job": "libvirt", "instance": "127.0.0.1:9177"}, 1.0)]
