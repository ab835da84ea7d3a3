"""storjnet.Node: several real nodes in one Python process (UDP on loopback)."""
import asyncio
import queue
import random
import threading

import pytest

import storjnet
from conftest import TIMEOUT


def test_nodes_join_and_know_each_other(net):
    assert all(n.joined for n in net[1:])
    ids = {n.id for n in net}
    assert len(ids) == len(net) and all(len(i) == 40 for i in ids)
    assert all(n.port > 0 for n in net)  # port 0 asked: the OS-chosen port is read back
    assert net[2].dht_id() == net[2].id
    peers = net[0].dht_peers()
    assert {p[0] for p in peers} <= ids - {net[0].id} and peers
    node_id, ip, port = peers[0]
    assert ip == "127.0.0.1" and isinstance(port, int)
    assert net[1].dht_find(net[3].id) == ("127.0.0.1", net[3].port)
    assert net[1].dht_stun() == ("127.0.0.1", net[1].port)


def test_put_get_between_nodes(net):
    value = {"name": "storjnet", "list": [1, 2.5, None, True], "nested": {"ü": "ok"}}
    assert net[1].dht_put("py:doc", value) is True
    assert net[4].dht_get("py:doc") == value
    assert net[0].dht_get("py:no such key") is None
    rows = net[3].dht_get_all("py:doc")
    assert rows[0]["value"] == value and rows[0]["owner"] == net[1].id and rows[0]["holders"] >= 1
    # Values are owned: another node cannot overwrite a live value.
    with pytest.raises(storjnet.Error, match="not stored: .*another owner's"):
        net[2].dht_put("py:doc", "other")
    assert net[2].dht_get("py:doc") == value
    # Naming the owner: its value, and nothing for an owner that never wrote the key.
    assert net[4].dht_get("py:doc", owner=net[1].id) == value
    assert net[4].dht_get("py:doc", net[2].id) is None
    with pytest.raises(ValueError, match="node_id"):
        net[4].dht_get("py:doc", owner="not hex")


def test_messages(net):
    assert net[0].message_send(net[3].id, {"hi": 1}) is True
    assert net[1].message_send(net[3].id, "second sender") is True
    assert net[0].message_send(net[3].id.upper(), [2]) is True  # upper-case hex accepted
    assert net[3].message_list() == {net[0].id: [{"hi": 1}, [2]], net[1].id: ["second sender"]}
    assert net[3].message_list() == {}


def test_pubsub_callback_and_events(net):
    got = queue.Queue()
    sub, pub = net[4], net[2]
    sub.on_pubsub_event(lambda topic, event: got.put((topic, event)))
    try:
        sub.pubsub_subscribe("py-news")
        assert sub.pubsub_subscriptions() == ["py-news"]
        # The subscription spreads to the topic's rendezvous nodes asynchronously: publish numbered events
        # until one arrives (each wait is a bound, not a delay; the first delivery ends the loop).
        first = None
        for seq in range(200):
            pub.pubsub_publish("py-news", {"seq": seq, "text": "hello"})
            try:
                first = got.get(timeout=min(0.5, TIMEOUT))
                break
            except queue.Empty:
                continue
        assert first is not None, "no event delivered"
        topic, event = first
        assert topic == "py-news" and event["text"] == "hello"
        # Every event also queues for pubsub_events, each once, in arrival order.
        events = sub.pubsub_events("py-news")
        assert events[0] == event
        seqs = [e["seq"] for e in events]
        assert len(seqs) == len(set(seqs))
        sub.pubsub_unsubscribe("py-news")
        assert sub.pubsub_subscriptions() == []
    finally:
        sub.on_pubsub_event(None)


def test_stream_one_mebibyte_bit_exact(net):
    data = random.Random(7).randbytes(1024 * 1024 + 17)
    a, b = net[1], net[3]
    sid = a.stream_open(b.id)
    assert isinstance(sid, str) and len(sid) == 64
    assert b.stream_list()[sid][0] == a.id
    writer_error = []

    def write():
        try:
            a.stream_write_all(sid, data)
        except Exception as e:  # reported by the main thread
            writer_error.append(e)

    t = threading.Thread(target=write)
    t.start()
    received = b.stream_read_exactly(sid, len(data))
    t.join(TIMEOUT)
    assert not t.is_alive() and not writer_error
    assert received == data
    assert b.stream_read(sid) == b""
    assert a.stream_close(sid) is True
    assert a.stream_close(sid) is False
    assert sid not in a.stream_list()


def test_stream_basic_read_write(net):
    a, b = net[0], net[2]
    sid = a.stream_open(b.id)
    assert a.stream_write(sid, b"abc") == 3
    b.stream_wait_readable(sid)
    assert b.stream_read(sid, 2) == b"ab"
    assert b.stream_read(sid) == b"c"
    assert b.stream_close(sid) is True
    a.stream_wait_readable(sid)  # the close reaches a: readable (closed) now
    assert a.stream_read(sid) is None
    assert a.stream_write(sid, b"x") is None


def test_asyncio_flavour(net):
    a, b = net[1], net[4]

    async def main():
        loop_ran = asyncio.Event()
        # A call returns a future at once: the loop keeps running while the node works.
        fut = a.dht_find_async("00" * 20)
        assert isinstance(fut, asyncio.Future) and not fut.done()
        asyncio.get_running_loop().call_soon(loop_ran.set)
        await loop_ran.wait()
        assert await fut is None or isinstance(await fut, tuple)
        oks = await asyncio.gather(*(a.dht_put_async(f"py:async:{i}", {"i": i}) for i in range(5)))
        assert oks == [True] * 5
        vals = await asyncio.gather(*(b.dht_get_async(f"py:async:{i}") for i in range(5)))
        assert vals == [{"i": i} for i in range(5)]
        assert await a.message_send_async(b.id, "async hello") is True
        assert await b.message_list_async() == {a.id: ["async hello"]}
        sid = await a.stream_open_async(b.id)
        payload = bytes(range(256)) * 1024
        reader = asyncio.ensure_future(b.stream_read_exactly_async(sid, len(payload)))
        await a.stream_write_all_async(sid, payload)
        assert await reader == payload
        assert await a.stream_close_async(sid) is True
        with pytest.raises(TypeError, match="key: expected a str"):
            a.dht_get_async(7)  # bad arguments raise at the call, before any future

    asyncio.run(main())


def test_bad_arguments_raise_and_node_survives(net):
    n = net[2]
    cases = [
        (TypeError, "key: expected a str", lambda: n.dht_get(7)),
        (ValueError, "key: key too large", lambda: n.dht_get("k" * 5000)),
        (TypeError, "value: not a JSON value", lambda: n.dht_put("k", object())),
        (TypeError, "value: not a JSON value", lambda: n.dht_put("k", float("nan"))),
        (ValueError, "value: value too large", lambda: n.dht_put("k", "x" * 70000)),
        (ValueError, "wrong node id length (4 hex characters, expected 40)", lambda: n.dht_find("abcd")),
        (ValueError, "node_id: bad hex in node id", lambda: n.message_send("zz" * 20, 1)),
        (TypeError, "node_id: expected a str", lambda: n.stream_open(None)),
        (ValueError, "topic: empty topic", lambda: n.pubsub_subscribe("")),
        (ValueError, "topic: topic too large", lambda: n.pubsub_publish("t" * 300, 1)),
        (ValueError, "event: event too large", lambda: n.pubsub_publish("t", "e" * 9000)),
        (ValueError, "stream_id: wrong stream id length", lambda: n.stream_read("ab")),
        (ValueError, "size: must not be negative", lambda: n.stream_read("00" * 32, -1)),
        (TypeError, "data: expected bytes", lambda: n.stream_write("00" * 32, "text")),
        (TypeError, "missing", lambda: n.dht_put("only key")),
        (ValueError, "bootstrap", lambda: n.bootstrap(["no-port"])),
    ]
    for exc, text, call in cases:
        with pytest.raises(exc, match=None) as info:
            call()
        assert text in str(info.value), (text, str(info.value))
    # The native layer checks again (for callers that skip the Python layer), and a service's refusal
    # (pubsub takes only JSON events) raises storjnet.Error, in both forms.
    native = n._live()
    for call, text in [(lambda: native.dht_find("abcd"), "node_id"), (lambda: native.stream_read("ab", None), "stream_id"),
                       (lambda: native.dht_put("k", b"x" * 70000), "value: too large"),
                       (lambda: native.pubsub_subscribe(""), "topic: empty")]:
        with pytest.raises(ValueError, match=text):
            call()
    with pytest.raises(storjnet.Error, match="pubsub refused the event"):
        native.pubsub_publish("t", b"not json")

    async def refused_async():
        return await storjnet.aio.call(native.pubsub_publish_async, "t", b"not json")

    with pytest.raises(storjnet.Error, match="pubsub refused the event"):
        asyncio.run(refused_async())
    # Unknown streams are answers, not errors.
    assert n.stream_read("00" * 32) is None and n.stream_close("00" * 32) is False
    # The node still works.
    assert n.dht_put("py:after-bad-args", 1) is True
    assert net[0].dht_get("py:after-bad-args") == 1


def test_constructor_errors():
    with pytest.raises(ValueError, match="host"):
        storjnet.Node(host="not an ip")
    with pytest.raises(ValueError, match="port"):
        storjnet.Node(port=70000)
    with pytest.raises(TypeError, match="port"):
        storjnet.Node(port="4000")
    with pytest.raises(ValueError, match="network_id"):
        storjnet.Node(network_id=-1)
    with storjnet.Node(host="127.0.0.1") as a:
        with pytest.raises(ValueError, match="cannot start the node"):
            storjnet.Node(host="127.0.0.1", port=a.port)  # in use


def test_close_fails_pending_and_later_calls():
    lonely = storjnet.Node(host="127.0.0.1")
    # A find with no peers takes time to give up; close the node while it is pending.
    result = queue.Queue()

    def find():
        try:
            result.put(lonely.dht_put("py:pending", 1))
        except Exception as e:
            result.put(e)

    async def pending_async():
        fut = lonely.dht_put_async("py:pending-async", 2)
        lonely.close()
        return await fut

    t = threading.Thread(target=find)
    t.start()
    with pytest.raises(storjnet.ClosedError):
        asyncio.run(pending_async())
    t.join(TIMEOUT)
    r = result.get(timeout=TIMEOUT)
    assert isinstance(r, storjnet.Error)  # ClosedError, or "not stored" if the put gave up before the close
    assert lonely.closed
    with pytest.raises(storjnet.ClosedError):
        lonely.dht_get("x")
    lonely.close()  # idempotent


def test_blocking_call_from_callback_is_refused(net):
    errors = queue.Queue()
    n = net[0]

    def callback(topic, event):
        try:
            n.dht_peers()
        except RuntimeError as e:
            errors.put(e)

    n.on_pubsub_event(callback)
    try:
        n.pubsub_subscribe("py-self")
        n.pubsub_publish("py-self", 1)  # a subscriber delivers its own events locally
        e = errors.get(timeout=TIMEOUT)
        assert "_async" in str(e)
    finally:
        n.on_pubsub_event(None)
        n.pubsub_unsubscribe("py-self")


def test_data_dir_keeps_identity_and_is_locked(tmp_path):
    with storjnet.Node(host="127.0.0.1", data_dir=tmp_path / "n") as a:
        first = a.id
        with pytest.raises(ValueError, match="in use"):
            storjnet.Node(host="127.0.0.1", data_dir=tmp_path / "n")
    with storjnet.Node(host="127.0.0.1", data_dir=str(tmp_path / "n")) as b:
        assert b.id == first



def test_close_from_callback_refused_and_dropping_the_node_there_is_safe():
    errors, ready, done = queue.Queue(), threading.Event(), threading.Event()
    holder = {"node": storjnet.Node(host="127.0.0.1")}

    def callback(topic, event):
        try:
            holder["node"].close()
        except RuntimeError as e:
            errors.put(e)
        ready.wait(TIMEOUT)  # until the test let go of its references
        holder.clear()  # the last one goes away here, on the node's own driver thread
        done.set()

    holder["node"].on_pubsub_event(callback)
    holder["node"].pubsub_subscribe("py-drop")
    holder["node"]._native.pubsub_publish_async("py-drop", b"1", lambda result, error: None)
    ready.set()
    assert done.wait(TIMEOUT)
    assert "close() from a node callback" in str(errors.get(timeout=TIMEOUT))
    # The node stopped on another thread; this process goes on using new nodes.
    with storjnet.Node(host="127.0.0.1") as other:
        assert other.dht_peers() == []


def test_many_threads_call_one_node(net):
    a, b = net[0], net[3]
    assert a.dht_put("py:threads", {"shared": True}) is True
    results, errors = queue.Queue(), queue.Queue()

    def worker(i):
        try:
            for j in range(10):
                results.put(b.dht_get("py:threads"))
                assert b.message_send(a.id, {"thread": i, "seq": j})
        except Exception as e:
            errors.put(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert errors.empty() and results.qsize() == 80
    assert all(results.get() == {"shared": True} for _ in range(80))
    inbox = a.message_list()[b.id]
    assert len(inbox) == 80
    for i in range(8):  # each thread's messages in the order it sent them
        assert [m["seq"] for m in inbox if m["thread"] == i] == list(range(10))


def test_stream_readable_callback(net):
    a, b = net[2], net[4]
    sid = a.stream_open(b.id)
    fired = queue.Queue()
    b.on_stream_readable(sid, fired.put)
    assert a.stream_write(sid, b"ping") == 4
    assert fired.get(timeout=TIMEOUT) == sid
    assert b.stream_read(sid) == b"ping"
    b.on_stream_readable(sid, fired.put)  # one-shot: registered again, fires on the close
    assert a.stream_close(sid) is True
    assert fired.get(timeout=TIMEOUT) == sid
    assert b.stream_read(sid) is None


EXIT_SCRIPT = r"""
import threading, storjnet
a = storjnet.Node(host="127.0.0.1")
b = storjnet.Node(host="127.0.0.1", bootstrap=[a.address])
sid = a.stream_open(b.id)
started = threading.Event()
def wait_forever():
    started.set()
    try:
        b.stream_wait_readable(sid)  # nothing is ever written: only the exit ends this
    except storjnet.ClosedError as e:
        print("thread:", type(e).__name__, flush=True)
t = threading.Thread(target=wait_forever)  # not a daemon thread: Python waits for it at exit
t.start()
started.wait()
print("main: exiting without close()", flush=True)
"""


def test_interpreter_exit_closes_nodes_and_ends_blocked_threads():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "thread: ClosedError"
