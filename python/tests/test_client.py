"""storjnet.Client against a storjnetd (3 nodes) that the test starts on OS-chosen ports."""
import asyncio
import os
import re
import signal
import subprocess

import pytest

import storjnet
from conftest import TIMEOUT

NODE_LINE = re.compile(r"node (\d+) id=([0-9a-f]{40}) udp=\S+ api=(http://\S+)")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    storjnetd = os.environ.get("STORJNETD")
    if not storjnetd:
        pytest.fail("STORJNETD (the storjnetd binary) is not set: run this suite through ctest")
    data = tmp_path_factory.mktemp("storjnetd")
    proc = subprocess.Popen(
        [storjnetd, "--nodes", "3", "--port", "0", "--api-port", "0", "--host", "127.0.0.1",
         "--data-dir", str(data), "--log-level", "warn"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    nodes = {}
    try:
        for line in proc.stdout:  # ends (EOF) if the daemon dies: no wall-clock wait involved
            m = NODE_LINE.match(line)
            if m:
                nodes[int(m.group(1))] = (m.group(2), m.group(3))
            if "nodes ready" in line:
                break
        assert len(nodes) == 3, f"storjnetd did not start: {proc.stderr.read() if proc.poll() is not None else nodes}"
        token = (data / ".cookie").read_text().strip()
        yield {"nodes": nodes, "token": token, "data": data}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert rc == 0


def clients(daemon):
    return [storjnet.Client(daemon["nodes"][i][1], token=daemon["token"]) for i in range(3)]


def test_client_put_get_message_stream(daemon):
    c0, c1, c2 = clients(daemon)
    ids = [daemon["nodes"][i][0] for i in range(3)]
    assert c0.dht_id() == ids[0]
    assert c0.health()["id"] == ids[0]
    assert c1.dht_put("py:client", {"a": [1, 2]}) is True
    assert c2.dht_get("py:client") == {"a": [1, 2]}
    assert c0.dht_get_all("py:client")[0]["owner"] == ids[1]
    assert c2.dht_get("py:missing") is None
    assert c2.dht_get("py:client", owner=ids[1]) == {"a": [1, 2]}
    assert c2.dht_get("py:client", ids[0]) is None
    assert c0.dht_find(ids[2])[1] > 0
    assert all(isinstance(p, tuple) for p in c0.dht_peers())
    assert c0.message_send(ids[2], {"hi": 1}) is True
    assert c2.message_list() == {ids[0]: [{"hi": 1}]}
    sid = c0.stream_open(ids[1])
    data = bytes(range(256)) * 64
    assert c0.stream_write(sid, data) == len(data)
    got = b""
    while len(got) < len(data):  # each read answers at once; the loop ends when all bytes arrived
        chunk = c1.stream_read(sid)
        assert chunk is not None
        got += chunk
    assert got == data
    assert c1.stream_list()[sid] == (ids[0], 0)
    assert c0.stream_close(sid) is True
    c2.pubsub_subscribe("py-client")
    assert c2.pubsub_subscriptions() == ["py-client"]
    c2.pubsub_unsubscribe("py-client")


def test_client_async(daemon):
    c0, c1, _ = clients(daemon)

    async def main():
        assert await c0.dht_put_async("py:client-async", 5) is True
        return await asyncio.gather(c1.dht_get_async("py:client-async"), c0.dht_id_async())

    value, node_id = asyncio.run(main())
    assert value == 5 and node_id == daemon["nodes"][0][0]


def test_client_errors(daemon):
    c0 = clients(daemon)[0]
    with pytest.raises(ValueError, match="wrong node id length"):
        c0.dht_find("abcd")  # checked locally
    with pytest.raises(storjnet.RpcError, match="wrong node id length") as e:
        c0.call("dht_find", ["abcd"])  # and by the daemon
    assert e.value.code == -32602
    with pytest.raises(storjnet.RpcError, match="method not found"):
        c0.call("no_such_method")
    with pytest.raises(storjnet.Error, match="unauthorized"):
        storjnet.Client(daemon["nodes"][0][1], token="wrong").dht_id()
    # The cookie is found through data_dir, as the CLI finds it.
    assert storjnet.Client(daemon["nodes"][0][1], data_dir=str(daemon["data"])).dht_id() == c0.dht_id()
    with pytest.raises(storjnet.Error):
        storjnet.Client("http://127.0.0.1:1", token="t").dht_id()  # nothing listens on port 1
    assert c0.dht_put("py:client-after-errors", True) is True
