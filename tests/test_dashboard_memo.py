"""dashboards.memo: one look at the store for the requests that arrive together (never one that began before a
request arrived), and what was built for a store state kept for the next request."""

import threading
import time

from dashboards import data, memo
from dashboards.synthetic import make_store


def _wait_for(cond, what, timeout=30):
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_requests_that_arrive_during_a_look_share_the_next_one_never_the_earlier(tmp_path, monkeypatch):
    make_store(tmp_path, 2)
    real = data.snapshot
    calls, release = [], threading.Event()

    def slow_snapshot(root):
        snap = real(root)  # the answer first: the test goes on once the first look has taken it
        calls.append(len(calls))
        if len(calls) == 1:
            release.wait(30)  # the first look is held (its answer taken) until the others have arrived
        return snap

    monkeypatch.setattr(data, "snapshot", slow_snapshot)
    got = {}

    def request(name):
        got[name] = memo.snapshot(tmp_path)

    first = threading.Thread(target=request, args=("first",))
    first.start()
    _wait_for(lambda: len(calls) == 1, "the first look")
    looks = memo._LOOKS[tmp_path.resolve()]
    late = [threading.Thread(target=request, args=(f"late{i}",)) for i in range(3)]
    for t in late:
        t.start()
    _wait_for(lambda: len(looks.cond._waiters) == 3, "the late requests to wait")
    make_store(tmp_path, 1, start=2)  # the store changes after the first look began
    release.set()
    for t in [first, *late]:
        t.join(30)
    assert len(calls) == 2                        # the three late requests shared one new look
    assert len(got["first"].runs) == 2
    assert all(len(got[f"late{i}"].runs) == 3 for i in range(3))  # none was given the look that began earlier


def test_a_look_sees_a_run_written_just_before(tmp_path):
    make_store(tmp_path, 2)
    assert len(memo.snapshot(tmp_path).runs) == 2
    make_store(tmp_path, 1, start=2)
    assert len(memo.snapshot(tmp_path).runs) == 3


def test_built_keeps_a_value_per_key_and_forgets_the_oldest():
    memo.clear()
    made = []
    assert memo.built(("a",), lambda: made.append("a") or 1) == 1
    assert memo.built(("a",), lambda: made.append("a again") or 2) == 1
    for i in range(memo.MAX_FIGURES):
        memo.built(("n", i), lambda i=i: i)
    assert memo.built(("a",), lambda: made.append("a made again") or 3) == 3
    assert made == ["a", "a made again"]
    memo.clear()
