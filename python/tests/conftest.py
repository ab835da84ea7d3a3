"""Fixtures: a small network of storjnet.Node in this process, on loopback ports the OS picks."""
import os
import sys

import pytest

import storjnet

# Failure bounds only: a test waits on events and returns as soon as they happen.
TIMEOUT = float(os.environ.get("STORJNET_TEST_TIMEOUT", "60"))


@pytest.fixture(scope="module")
def net():
    """Five nodes: node 0 alone, the others bootstrapped through it."""
    nodes = [storjnet.Node(host="127.0.0.1")]
    for _ in range(4):
        nodes.append(storjnet.Node(host="127.0.0.1", bootstrap=[nodes[0].address]))
    yield nodes
    for n in nodes:
        n.close()


def pytest_report_header(config):
    return f"storjnet module: {storjnet._storjnet.__file__} (python {sys.version.split()[0]})"
