"""storjnet.Node: a real node in this process, on its own driver thread (see docs/python.md)."""
from __future__ import annotations

import atexit
import inspect
import json
import socket
import threading
import weakref
from typing import Any, Callable, Iterable, Optional, Sequence, Tuple, Union

from . import _args, aio
from . import _storjnet as _native
from ._storjnet import ClosedError, Error

Seed = Union[str, Tuple[str, int]]
_STREAM_CHUNK = 256 * 1024  # bytes per stream_write in stream_write_all


# --- results: native -> Python ---------------------------------------------------------------------------
def _same(r: Any) -> Any:
    return r


def _stored_value(text: Optional[bytes]) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise Error("the stored value is not JSON") from None


def _owned_values(rows: list) -> list:
    out = []
    for text, owner, version, holders in rows:
        try:
            v = json.loads(text)
        except ValueError:
            v = {"hex": text.hex()}
        out.append({"value": v, "owner": owner, "version": version, "holders": holders})
    return out


def _json_list(texts: Iterable[bytes]) -> list:
    out = []
    for t in texts:  # what is not JSON is dropped, as the daemon drops it
        try:
            out.append(json.loads(t))
        except ValueError:
            pass
    return out


def _inbox(by_sender: dict) -> dict:
    return {sender: _json_list(msgs) for sender, msgs in by_sender.items()}


# --- the method table: name -> (prepare(args) -> native args, convert(native result)) ---------------------
def _p_none() -> tuple:
    return ()


def _p_key(key: str) -> tuple:
    return (_args.key(key),)


def _p_get(key: str, owner: Optional[str] = None) -> tuple:
    return (_args.key(key), None if owner is None else _args.node_id(owner))


def _p_put(key: str, value: Any) -> tuple:
    return (_args.key(key), _args.value(value))


def _p_node(node_id: str) -> tuple:
    return (_args.node_id(node_id),)


def _p_topic(topic: str) -> tuple:
    return (_args.topic(topic),)


def _p_publish(topic: str, event: Any) -> tuple:
    return (_args.topic(topic), _args.event(event))


def _p_send(node_id: str, message: Any) -> tuple:
    return (_args.node_id(node_id), _args.message(message))


def _p_stream(stream_id: str) -> tuple:
    return (_args.stream_id(stream_id),)


def _p_read(stream_id: str, size: Optional[int] = None) -> tuple:
    return (_args.stream_id(stream_id), _args.size(size))


def _p_write(stream_id: str, data: bytes) -> tuple:
    return (_args.stream_id(stream_id), _args.data(data))


_METHODS = {
    "dht_put": (_p_put, _same, "Stores a JSON value under key; True once a remote replica acknowledged, else storjnet.Error('not stored: <why>')."),
    "dht_get": (_p_get, _stored_value, "The value under key, or None when no node has it. With owner (a node id), only that publisher's value."),
    "dht_get_all": (_p_key, _owned_values, "Every owner's value: [{value, owner, version, holders}], most holders first."),
    "dht_stun": (_p_none, _same, "(ip, port): our address as a neighbour sees it; None without neighbours."),
    "dht_find": (_p_node, _same, "(ip, port) of that node; None when not found (within 5 s)."),
    "dht_peers": (_p_none, _same, "The routing table: [(node_id, ip, port), ...]."),
    "pubsub_publish": (_p_publish, _same, "Publishes a JSON event on topic."),
    "pubsub_subscribe": (_p_topic, _same, "Subscribes to topic (events then queue for pubsub_events)."),
    "pubsub_unsubscribe": (_p_topic, _same, "Unsubscribes from topic."),
    "pubsub_subscriptions": (_p_none, _same, "The topics subscribed to."),
    "pubsub_events": (_p_topic, _json_list, "Events received on topic since the last call, in arrival order."),
    "message_send": (_p_send, _same, "Sends a JSON message; True once the receiver queued it."),
    "message_list": (_p_none, _inbox, "Messages received since the last call: {sender node id: [message, ...]}."),
    "stream_list": (_p_none, _same, "Open streams: {stream_id: (peer node id, unread bytes)}."),
    "stream_open": (_p_node, _same, "Opens a stream to node_id: its stream id, or None when unreachable."),
    "stream_close": (_p_stream, _same, "Closes a stream: True when it was open."),
    "stream_read": (_p_read, _same, "Up to size buffered bytes (all when None); b'' when none; None when closed."),
    "stream_write": (_p_write, _same, "Bytes the peer's buffer accepted (short or 0 when full); None when closed."),
    "stream_writable": (_p_stream, _same, "Bytes a write would accept right now."),
    "stream_wait_readable": (_p_stream, _same, "Returns once the stream has bytes to read, or closed."),
    "stream_wait_writable": (_p_stream, _same, "Returns once the peer's buffer has room again, or the stream closed."),
    "bootstrap": (None, _same, "Joins the network through seeds ('host:port' or (host, port)); True once one answered."),
}


def _make_methods(cls: type) -> type:
    for name, (prepare, convert, doc) in _METHODS.items():
        if prepare is None:  # written by hand below
            continue

        def sync(self: "Node", *a: Any, _n: str = name, _p: Callable = prepare, _c: Callable = convert, **kw: Any) -> Any:
            return _c(getattr(self._live(), _n)(*_p(*a, **kw)))

        def async_(self: "Node", *a: Any, _n: str = name, _p: Callable = prepare, _c: Callable = convert, **kw: Any):
            native_args = _p(*a, **kw)
            return aio.call(getattr(self._live(), _n + "_async"), *native_args, convert=_c)

        params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        params += list(inspect.signature(prepare).parameters.values())
        for f, fname, fdoc in ((sync, name, doc), (async_, name + "_async", "Awaitable form of " + name + ": " + doc)):
            f.__name__ = f.__qualname__ = fname
            f.__doc__ = fdoc
            f.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
            setattr(cls, fname, f)
    return cls


def _resolve_seed(seed: Seed) -> Tuple[str, int]:
    if isinstance(seed, tuple) and len(seed) == 2:
        host, port = seed
    elif isinstance(seed, str):
        host, sep, port_text = seed.rpartition(":")
        if not sep or not host or not port_text.isdigit():
            raise ValueError(f'bootstrap: "{seed}": expected host:port')
        host, port = host.strip("[]"), int(port_text)
    else:
        raise TypeError(f"bootstrap: expected 'host:port' or (host, port), got {type(seed).__name__}")
    if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"bootstrap: {seed!r}: expected a host name or IP and a port 1..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as e:
        raise ValueError(f'bootstrap: "{host}": cannot resolve: {e}') from None
    infos.sort(key=lambda i: i[0] != socket.AF_INET)  # IPv4 first, as storjnetd
    return (infos[0][4][0], port)


def _seeds(seeds: Union[Seed, Sequence[Seed]]) -> list:
    if isinstance(seeds, str) or (isinstance(seeds, tuple) and len(seeds) == 2 and isinstance(seeds[1], int)):
        seeds = [seeds]  # one seed given alone
    return [_resolve_seed(s) for s in seeds]  # type: ignore[union-attr]


_live_nodes: "weakref.WeakSet[Node]" = weakref.WeakSet()


def _close_all() -> None:
    for node in list(_live_nodes):
        node.close()


# At interpreter exit, before Python joins its non-daemon threads (threading._register_atexit, as
# concurrent.futures does): a thread blocked in a node call then gets ClosedError instead of keeping the
# process alive for ever. Plain atexit where that hook is missing.
_register = getattr(threading, "_register_atexit", None)
if _register is not None:
    _register(_close_all)
else:
    atexit.register(_close_all)


@_make_methods
class Node:
    """A storjnet node running in this process on its own driver thread.

    Methods mirror the user API of docs/api.md (values, messages and events are JSON-able Python values;
    stream data is bytes). Each blocks its calling thread with the GIL released; each has an awaitable
    `_async` form that never blocks the event loop. Bad arguments raise TypeError / ValueError naming the
    parameter; refusals raise storjnet.Error; calls on a closed node raise storjnet.ClosedError. Callbacks
    run on the node's thread: keep them short and call only `_async` forms (or other threads) from them.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "0.0.0.0",
        data_dir: Optional[str] = None,
        bootstrap: Sequence[Seed] = (),
        network_id: Optional[int] = None,
        on_pubsub_event: Optional[Callable[[str, Any], None]] = None,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"port: expected an int, got {type(port).__name__}")
        if not isinstance(host, str):
            raise TypeError(f"host: expected a str, got {type(host).__name__}")
        if network_id is None:
            network_id = _native.DEFAULT_NETWORK_ID
        if isinstance(network_id, bool) or not isinstance(network_id, int) or not 0 <= network_id <= 0xFFFFFFFF:
            raise ValueError(f"network_id: expected a 32-bit unsigned int, got {network_id!r}")
        if data_dir is not None:
            data_dir = str(data_dir)
        seeds = _seeds(bootstrap)
        self._lock = threading.Lock()
        self._native: Optional[_native.Node] = _native.Node(host, port, data_dir, network_id)
        _live_nodes.add(self)
        self.id: str = self._native.id
        self.port: int = self._native.port
        self.host: str = self._native.host
        self.network_id: int = network_id
        if on_pubsub_event is not None:
            self.on_pubsub_event(on_pubsub_event)
        self.joined: bool = self.bootstrap(seeds) if seeds else False

    @property
    def address(self) -> Tuple[str, int]:
        """(ip, port) other nodes on this machine reach this node at (loopback when bound to any address)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return (host, self.port)

    def dht_id(self) -> str:
        """Our node id (40 hex characters)."""
        return self.id

    async def dht_id_async(self) -> str:
        return self.id

    def bootstrap(self, seeds: Sequence[Seed]) -> bool:
        return bool(self._live().bootstrap(_seeds(seeds)))

    def bootstrap_async(self, seeds: Sequence[Seed]) -> "aio.asyncio.Future[bool]":
        return aio.call(self._live().bootstrap_async, _seeds(seeds))

    def on_pubsub_event(self, callback: Optional[Callable[[str, Any], None]]) -> None:
        """Calls callback(topic, event) on the node's thread for each event delivered here (None: stop).

        Events stay queued for pubsub_events as well. Events that are not JSON are dropped.
        """
        if callback is None:
            self._live().set_on_pubsub_event(None)
            return

        def deliver(topic: str, text: bytes) -> None:
            try:
                ev = json.loads(text)
            except ValueError:
                return
            callback(topic, ev)

        self._live().set_on_pubsub_event(deliver)

    def on_stream_readable(self, stream_id: str, callback: Callable[[str], None]) -> None:
        """Calls callback(stream_id) once, on the node's thread, when the stream has bytes to read or closed
        (at once when some are buffered already). Register again for the next time."""
        sid = _args.stream_id(stream_id)
        if not callable(callback):
            raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")

        def done(result: Any, error: Optional[BaseException]) -> None:
            if error is None:  # not when the node closed first
                callback(sid)

        self._live().stream_wait_readable_async(sid, done)

    # --- streams: whole buffers ---
    def stream_write_all(self, stream_id: str, data: bytes) -> None:
        """Writes all of data, waiting for room as needed; raises Error when the stream closes first."""
        sid, buf = _args.stream_id(stream_id), memoryview(_args.data(data))
        off = 0
        while off < len(buf):
            n = self._live().stream_write(sid, bytes(buf[off : off + _STREAM_CHUNK]))
            if n is None:
                raise Error(f"stream {sid[:16]}... closed after {off} of {len(buf)} bytes written")
            if n == 0:
                self._live().stream_wait_writable(sid)
            off += n

    def stream_read_exactly(self, stream_id: str, size: int) -> bytes:
        """Reads exactly size bytes, waiting for them; raises Error when the stream closes first."""
        sid, want = _args.stream_id(stream_id), _args.size(size)
        assert want is not None
        parts, got = [], 0
        while got < want:
            self._live().stream_wait_readable(sid)
            chunk = self._live().stream_read(sid, want - got)
            if chunk is None:
                raise Error(f"stream {sid[:16]}... closed after {got} of {want} bytes read")
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    async def stream_write_all_async(self, stream_id: str, data: bytes) -> None:
        sid, buf = _args.stream_id(stream_id), memoryview(_args.data(data))
        off = 0
        while off < len(buf):
            n = await aio.call(self._live().stream_write_async, sid, bytes(buf[off : off + _STREAM_CHUNK]))
            if n is None:
                raise Error(f"stream {sid[:16]}... closed after {off} of {len(buf)} bytes written")
            if n == 0:
                await aio.call(self._live().stream_wait_writable_async, sid)
            off += n

    async def stream_read_exactly_async(self, stream_id: str, size: int) -> bytes:
        sid, want = _args.stream_id(stream_id), _args.size(size)
        assert want is not None
        parts, got = [], 0
        while got < want:
            await aio.call(self._live().stream_wait_readable_async, sid)
            chunk = await aio.call(self._live().stream_read_async, sid, want - got)
            if chunk is None:
                raise Error(f"stream {sid[:16]}... closed after {got} of {want} bytes read")
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    # --- lifetime ---
    @property
    def closed(self) -> bool:
        return self._native is None or self._native.closed

    def close(self) -> None:
        """Stops the node (flushing its store); pending calls fail with ClosedError. Idempotent.

        Not from a node callback (RuntimeError: the node's thread cannot stop itself); the node stays open then.
        """
        native = self._native
        if native is None:
            return
        native.close()
        with self._lock:
            self._native = None
        _live_nodes.discard(self)

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.host}:{self.port}"
        return f"<storjnet.Node {self.id} {state}>"

    def _live(self) -> "_native.Node":
        native = self._native
        if native is None:
            raise ClosedError("the node is closed")
        return native
