"""storjnet.Client: the user API of a running storjnetd over its JSON-RPC 2.0 HTTP API (docs/api.md).

Standard library only (urllib). Same method names, arguments and results as storjnet.Node; the `_async`
forms run the blocking HTTP call in a worker thread (asyncio.to_thread), so the event loop never blocks.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import json
import os
import urllib.error
import urllib.request
from typing import Any, Callable, Optional

from . import _args
from ._storjnet import Error


class RpcError(Error):
    """An error response of the daemon: `code` is the JSON-RPC error code (-32603: the service refused)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _same(r: Any) -> Any:
    return r


def _endpoint(r: Any) -> Any:
    return tuple(r) if r is not None else None


def _peers(r: list) -> list:
    return [tuple(p) for p in r]


def _streams(r: dict) -> dict:
    return {sid: tuple(v) for sid, v in r.items()}


def _hex_bytes(r: Optional[str]) -> Optional[bytes]:
    return bytes.fromhex(r) if r is not None else None


# name -> (build params from the Python arguments, convert the result); the signatures are Node's.
def _m_none() -> list:
    return []


def _m_key(key: str) -> list:
    return [_args.key(key)]


def _m_get(key: str, owner: Optional[str] = None) -> list:
    return [_args.key(key)] if owner is None else [_args.key(key), _args.node_id(owner)]


def _m_put(key: str, value: Any) -> list:
    _args.value(value)
    return [_args.key(key), value]


def _m_node(node_id: str) -> list:
    return [_args.node_id(node_id)]


def _m_topic(topic: str) -> list:
    return [_args.topic(topic)]


def _m_publish(topic: str, event: Any) -> list:
    _args.event(event)
    return [_args.topic(topic), event]


def _m_send(node_id: str, message: Any) -> list:
    _args.message(message)
    return [_args.node_id(node_id), message]


def _m_stream(stream_id: str) -> list:
    return [_args.stream_id(stream_id)]


def _m_read(stream_id: str, size: Optional[int] = None) -> list:
    return [_args.stream_id(stream_id), _args.size(size)]


def _m_write(stream_id: str, data: bytes) -> list:
    return [_args.stream_id(stream_id), _args.data(data).hex()]


_METHODS = {
    "dht_put": (_m_put, _same),
    "dht_get": (_m_get, _same),
    "dht_get_all": (_m_key, _same),
    "dht_stun": (_m_none, _endpoint),
    "dht_find": (_m_node, _endpoint),
    "dht_id": (_m_none, _same),
    "dht_peers": (_m_none, _peers),
    "pubsub_publish": (_m_publish, _same),
    "pubsub_subscribe": (_m_topic, _same),
    "pubsub_unsubscribe": (_m_topic, _same),
    "pubsub_subscriptions": (_m_none, _same),
    "pubsub_events": (_m_topic, _same),
    "message_send": (_m_send, _same),
    "message_list": (_m_none, _same),
    "stream_list": (_m_none, _streams),
    "stream_open": (_m_node, _same),
    "stream_close": (_m_stream, _same),
    "stream_read": (_m_read, _hex_bytes),
    "stream_write": (_m_write, _same),
}


def _make_methods(cls: type) -> type:
    for name, (build, convert) in _METHODS.items():

        def sync(self: "Client", *a: Any, _n: str = name, _b: Callable = build, _c: Callable = convert, **kw: Any) -> Any:
            return _c(self.call(_n, _b(*a, **kw)))

        async def async_(self: "Client", *a: Any, _n: str = name, _b: Callable = build, _c: Callable = convert, **kw: Any) -> Any:
            params = _b(*a, **kw)  # bad arguments raise here, before any thread
            return _c(await asyncio.to_thread(self.call, _n, params))

        params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        params += list(inspect.signature(build).parameters.values())
        for f, fname in ((sync, name), (async_, name + "_async")):
            f.__name__ = f.__qualname__ = fname
            f.__doc__ = f"JSON-RPC {name} (docs/api.md)."
            f.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
            setattr(cls, fname, f)
    return cls


def _read_token(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as f:
            token = f.readline().strip()
    except OSError:
        return None
    return token or None


@_make_methods
class Client:
    """A storjnetd's API at `url` (default $STORJNET_API or http://127.0.0.1:5000).

    The token, as the `storjnet` CLI finds it: `token`, else $STORJNET_API_TOKEN, else the first line of
    `token_file`, else `data_dir`/.cookie ($STORJNET_DATA_DIR), else storjnet-data/.cookie or
    run/local-network/.cookie in the current directory. Error responses raise RpcError (invalid params:
    code -32602), HTTP and connection problems raise storjnet.Error.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        token: Optional[str] = None,
        token_file: Optional[str] = None,
        data_dir: Optional[str] = None,
        timeout: float = 60.0,
    ) -> None:
        self.url = url or os.environ.get("STORJNET_API") or "http://127.0.0.1:5000"
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url: expected http://host:port, got {self.url!r}")
        token = token or os.environ.get("STORJNET_API_TOKEN")
        if not token and token_file:
            token = _read_token(token_file)
            if not token:
                raise ValueError(f"token_file: cannot read a token from {token_file}")
        if not token:
            data_dir = data_dir or os.environ.get("STORJNET_DATA_DIR")
            dirs = [data_dir] if data_dir else ["storjnet-data", os.path.join("run", "local-network")]
            for d in dirs:
                token = _read_token(os.path.join(d, ".cookie"))
                if token:
                    break
        self.token = token
        self.timeout = timeout
        self._ids = itertools.count(1)

    def call(self, method: str, params: Any = None) -> Any:
        """One JSON-RPC request: the result, or RpcError with the daemon's code and message."""
        req: dict = {"jsonrpc": "2.0", "id": next(self._ids), "method": method}
        if params is not None:
            req["params"] = params
        body = json.dumps(req, separators=(",", ":"), allow_nan=False).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        http = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(http, timeout=self.timeout) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            if e.code == 401:
                raise Error(f"{self.url}: unauthorized (wrong or missing API token)") from None
            try:
                answer = json.loads(e.read())
            except ValueError:
                raise Error(f"{self.url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            raise Error(f"{self.url}: {getattr(e, 'reason', e)}") from None
        if "error" in answer:
            err = answer["error"]
            raise RpcError(err.get("code", 0), err.get("message", "unknown error"))
        return answer.get("result")

    def health(self) -> dict:
        """GET /health: {"status", "id", "peers"} (needs no token)."""
        try:
            with urllib.request.urlopen(self.url.rstrip("/") + "/health", timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except (urllib.error.URLError, OSError) as e:
            raise Error(f"{self.url}: {getattr(e, 'reason', e)}") from None

    def __repr__(self) -> str:
        return f"<storjnet.Client {self.url}>"
