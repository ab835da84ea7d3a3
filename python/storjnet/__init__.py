"""storjnet: a peer-to-peer network node (Kademlia DHT, direct messages, streams, pubsub) for Python.

    storjnet.Node(...)    runs a real node in this process (the C++ library, on its own thread)
    storjnet.Client(url)  talks to a running storjnetd over its JSON-RPC API (stdlib only)

Both offer the user API of docs/api.md under the same method names; see docs/python.md.
"""
from ._limits import DEFAULT_NETWORK_ID, MAX_EVENT_JSON, MAX_KEY, MAX_MESSAGE_JSON, MAX_TOPIC, MAX_VALUE_SIZE
from ._storjnet import ClosedError, Error
from . import aio
from ._node import Node
from .client import Client, RpcError

__all__ = [
    "Node",
    "Client",
    "Error",
    "ClosedError",
    "RpcError",
    "DEFAULT_NETWORK_ID",
    "MAX_KEY",
    "MAX_TOPIC",
    "MAX_VALUE_SIZE",
    "MAX_MESSAGE_JSON",
    "MAX_EVENT_JSON",
]
