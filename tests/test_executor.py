"""The one job executor (mgm_analysis.executor): queue order, events, cancel of a queued and of a running job,
a failing job's one line, a signal, close.  Real tiny jobs (a 16² generator, a few epochs); every wait is on
an event or the executor's own condition, with a timeout."""

import os
import signal
import subprocess
import sys
import threading

import pytest
from _cli import FAST_CONFIG

from mgm_analysis import store
from mgm_analysis.errors import MGMError, RunInterrupted
from mgm_analysis.executor import FINAL, Executor, JobStatus
from mgm_analysis.jobs import JobSpec

FAST = FAST_CONFIG
WAIT_S = 300  # the longest any wait here may take on 2 busy cores (a job takes about a second)


@pytest.fixture(scope="module")
def G(tiny_G):
    return tiny_G


def _spec(ckpt, seed=3, **config):
    return JobSpec(kind="discover", generator=str(ckpt), region="rect:4,8,12,14", seed=seed,
                   config={**FAST, **config})


class Events:
    """The listener: every (job id, event, state, epoch) in order, and an event per (job, event) to wait on."""

    def __init__(self, on=None):
        self.seen: list[tuple] = []
        self.flags: dict[tuple, threading.Event] = {}
        self.lock = threading.Lock()
        self.on = on

    def flag(self, job_id, event) -> threading.Event:
        with self.lock:
            return self.flags.setdefault((job_id, event), threading.Event())

    def __call__(self, st: JobStatus, event: str):
        assert isinstance(st, JobStatus)
        with self.lock:
            self.seen.append((st.id, event, st.state, st.epoch))
        self.flag(st.id, event).set()
        if self.on is not None:
            self.on(st, event)

    def of(self, job_id):
        return [(e, s, ep) for j, e, s, ep in self.seen if j == job_id]


def test_jobs_run_in_the_order_submitted_with_progress_and_status(ckpt, G, tmp_path):
    out = tmp_path / "runs"
    events, watched = Events(), []
    ex = Executor(out, generator=lambda spec: G, listener=events)
    a, b = _spec(ckpt, seed=3), _spec(ckpt, seed=4, epochs=3)
    ja = ex.submit(a, watch=lambda epoch, ws: watched.append((epoch, tuple(ws.shape))))
    jb = ex.submit(b, job_id="second")
    assert (ja, jb) == ("job-1", "second") and ex.queued() == [ja, jb] and ex.running is None
    assert ex.status(ja).state == ex.status(jb).state == "queued" and ex.status("nope") is None
    done = ex.drain()
    assert [st.id for st in done] == [ja, jb] and ex.queued() == []
    # each job: queued, started, one progress event per epoch (1..N, with the energy terms), finished
    assert events.of(ja) == [("queued", "queued", None), ("started", "running", None),
                             ("progress", "running", 1), ("progress", "running", 2), ("finished", "complete", 2)]
    assert [e for e, _, _ in events.of(jb)] == ["queued", "started", "progress", "progress", "progress", "finished"]
    # the order: the second job starts only after the first finished
    order = [(j, e) for j, e, _, _ in events.seen if e in ("started", "finished")]
    assert order == [(ja, "started"), (ja, "finished"), (jb, "started"), (jb, "finished")]
    sa, sb = ex.status(ja), ex.status(jb)
    assert sa.submitted <= sa.started <= sa.finished <= sb.started <= sb.finished
    assert sa.final and sa.error is None and sa.attempts == 1 and "total" in sa.terms
    # the run folders are the specs' own, complete, with the spec's key
    for st, spec, epochs in ((sa, a, 2), (sb, b, 3)):
        assert st.state == "complete" and st.path == out / spec.run_id and st.run_id == spec.run_id
        run = store.load_run(st.path, arrays=False)
        assert run.status == "complete" and run.meta["provenance"]["key"] == spec.key
        assert run.meta["resume"]["epochs_done"] == epochs
    assert [e for e, _ in watched] == [1, 2] and watched[0][1] == (5, G.num_ws, G.w_dim)  # the first job's watch
    assert ex.drain() == [] and ex.run_next() is None
    # the same job again: its run, said to exist, nothing searched (no progress, run_job not called)
    before = (out / a.run_id / "run.json").read_bytes()
    again = ex.submit(a)
    (st,) = ex.drain()
    assert st.existed and st.state == "complete" and st.path == out / a.run_id and st.attempts == 0
    assert [e for e, _, _ in events.of(again)] == ["queued", "started", "finished"]
    assert (out / a.run_id / "run.json").read_bytes() == before and not sa.existed


def test_cancel_a_queued_job(ckpt, G, tmp_path):
    events = Events()
    ex = Executor(tmp_path / "runs", generator=lambda spec: G, listener=events)
    a, b, c = (ex.submit(_spec(ckpt, seed=s)) for s in (3, 4, 5))
    assert ex.cancel(b) == "queued"
    st = ex.status(b)
    assert st.state == "cancelled" and st.final and st.error == "cancelled before it started" and st.started is None
    assert events.of(b) == [("queued", "queued", None), ("finished", "cancelled", None)]
    assert ex.queued() == [a, c]
    assert [s.id for s in ex.drain()] == [a, c]
    assert [ex.status(j).state for j in (a, b, c)] == ["complete", "cancelled", "complete"]
    assert "started" not in [e for e, _, _ in events.of(b)]
    assert not (tmp_path / "runs" / ex.status(b).spec.run_id).exists()
    assert ex.cancel(b) == "cancelled" and ex.cancel(a) == "complete" and ex.cancel("unknown") is None


def test_cancel_a_running_job_from_another_thread_stops_it_keeping_its_last_epoch(ckpt, G, tmp_path):
    """The executor serves in its own thread; once the long job reported an epoch the test cancels it: the run
    is saved interrupted (resumable) with the last epoch it reported, well before its 1000, and the next job runs."""
    events = Events()
    ex = Executor(tmp_path / "runs", generator=lambda spec: G, listener=events)
    thread = ex.start()
    long, short = ex.submit(_spec(ckpt, epochs=1000)), ex.submit(_spec(ckpt, seed=4))
    assert events.flag(long, "progress").wait(WAIT_S), "no epoch reported"
    assert ex.running == long and ex.cancel(long) == "running"
    assert ex.status(long).cancel_requested and ex.cancel(long) == "running"  # twice: no harm
    st = ex.wait(long, timeout=WAIT_S)
    assert st.state == "interrupted" and st.signal is None and st.error is None
    run = store.load_run(st.path, arrays=False)
    done = run.meta["resume"]["epochs_done"]
    assert run.status == "interrupted" and run.meta["stop_reason"] == "callback" and 1 <= done < 1000
    assert done == st.epoch  # the last epoch reported is the last one kept: a half-made epoch is dropped
    assert ex.wait(short, timeout=WAIT_S).state == "complete"
    ex.close()
    thread.join(WAIT_S)
    assert not thread.is_alive()


def test_a_cancel_at_an_epoch_stops_the_search_right_there(ckpt, G, tmp_path):
    """Cancelled while epoch 2 is reported (from the listener, in the job's thread): exactly 2 epochs done."""
    holder = {}

    def on(st, event):
        if event == "progress" and st.epoch == 2:
            assert holder["ex"].cancel(st.id) == "running"

    ex = holder["ex"] = Executor(tmp_path / "runs", generator=lambda spec: G, listener=Events(on))
    job = ex.submit(_spec(ckpt, epochs=50))
    (st,) = ex.drain()
    assert st.id == job and st.state == "interrupted" and st.epoch == 2
    assert store.load_run(st.path, arrays=False).meta["resume"]["epochs_done"] == 2


def _cancel_at_the_first_product(monkeypatch):
    """(the batch sizes of the masked Jacobian's reverse products, a dict for "ex" and "job"): the first product
    cancels holder["job"] on holder["ex"] before it computes anything."""
    import mgm_analysis.directions as directions

    products, holder = [], {}
    real_vjp = directions.JacobianOperator.vjp

    def vjp(self, U):
        products.append(len(U))
        if len(products) == 1:
            assert holder["ex"].cancel(holder["job"]) == "running"
        return real_vjp(self, U)

    monkeypatch.setattr(directions.JacobianOperator, "vjp", vjp)
    return products, holder


def test_a_cancel_inside_the_jacobian_start_stops_it_there(ckpt, G, tmp_path, monkeypatch):
    """Cancelled while the search makes its Jacobian start (during its first reverse product): no further product
    is computed, the run is saved interrupted at its start (0 epochs, resumable), and a resume finishes it."""
    products, holder = _cancel_at_the_first_product(monkeypatch)
    ex = holder["ex"] = Executor(tmp_path / "runs", generator=lambda spec: G)
    holder["job"] = ex.submit(_spec(ckpt, init_mode="jacobian", epochs=3))
    (st,) = ex.drain()
    assert st.state == "interrupted" and len(products) == 1
    run = store.load_run(st.path, arrays=False)
    assert run.meta["stop_reason"] == "callback" and run.meta["resume"]["epochs_done"] == 0
    again = ex.submit(_spec(ckpt, init_mode="jacobian", epochs=3))  # the same job: continues the saved run
    (st2,) = ex.drain()
    assert st2.state == "complete" and st2.path == st.path
    assert store.load_run(st2.path, arrays=False).meta["history"]["epoch"] == [1, 2, 3] and again == st2.id


def test_a_cancel_inside_a_baselines_masked_jacobian_ends_it_there_and_writes_nothing(ckpt, G, tmp_path,
                                                                                       monkeypatch):
    """A baseline job (the masked-Jacobian method) cancelled during its first reverse product: the method polls
    ``ctx.stop``, no further product is computed, the job is ``cancelled`` with nothing written, and the next job
    runs."""
    from mgm_analysis.executor import CANCELLED_RUNNING

    products, holder = _cancel_at_the_first_product(monkeypatch)
    ex = holder["ex"] = Executor(tmp_path / "runs", generator=lambda spec: G)
    holder["job"] = ex.submit(JobSpec(kind="baseline", generator=str(ckpt), region="rect:4,8,12,14", seed=3,
                                      config=FAST, params={"method": "jacobian"}))
    after = ex.submit(_spec(ckpt, seed=4))
    st, st2 = ex.drain()
    assert (st.state, st.error, len(products)) == ("cancelled", CANCELLED_RUNNING, 1)
    assert not (tmp_path / "runs" / st.spec.run_id).exists()
    assert st2.id == after and st2.state == "complete"


def test_a_failing_job_is_one_line_and_the_queue_goes_on(ckpt, G, tmp_path, monkeypatch):
    import mgm_analysis.discovery as discovery

    real, calls = discovery.discover, []

    def broken(G, w_ref, dist, cfg, **kw):  # an unexpected error in the search of the job with seed 9
        calls.append(cfg.seed)
        if kw.get("callback") and ex.status(ex.running).spec.seed == 9:
            raise RuntimeError("CUDA error: an illegal memory access\nsecond line of the message")
        return real(G, w_ref, dist, cfg, **kw)

    monkeypatch.setattr(discovery, "discover", broken)
    events = Events()
    out = tmp_path / "runs"
    ex = Executor(out, generator=lambda spec: G, listener=events, retries=1)
    bad_input = ex.submit(JobSpec(kind="discover", generator=str(ckpt), region="rect:4,8,40,44", seed=3,
                                  config=FAST))
    crash, fine = ex.submit(_spec(ckpt, seed=9)), ex.submit(_spec(ckpt, seed=4))
    ex.drain()
    st = ex.status(bad_input)
    assert st.state == "failed" and "outside the 16x16 image" in st.error and "\n" not in st.error
    assert st.attempts == 1 and st.path is None  # bad input is not retried
    st = ex.status(crash)
    assert st.state == "failed" and st.error == "RuntimeError: CUDA error: an illegal memory access"
    assert st.attempts == 2 and len(calls) == 3  # retried once; then the last job's one search
    assert events.of(crash)[-1] == ("finished", "failed", None)
    assert ex.status(fine).state == "complete"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [ex.status(fine).run_id]


def test_a_signal_saves_the_running_job_and_stops_the_caller(ckpt, G, tmp_path, sigint_raises):
    """Ctrl-C while a job runs in the main thread: run_job saves it interrupted, drain re-raises, the job after
    it stays queued (what the sweep's Ctrl-C relies on)."""
    assert threading.current_thread() is threading.main_thread()

    def on(st, event):
        if event == "progress" and st.epoch == 1 and st.id == first:
            os.kill(os.getpid(), signal.SIGINT)

    ex = Executor(tmp_path / "runs", generator=lambda spec: G, listener=Events(on))
    first = ex.submit(_spec(ckpt, epochs=50))
    second = ex.submit(_spec(ckpt, seed=4))
    with pytest.raises(RunInterrupted):
        ex.drain()
    st = ex.status(first)
    assert st.state == "interrupted" and st.signal == signal.SIGINT and st.path is not None
    assert store.load_run(st.path, arrays=False).status == "interrupted"
    assert ex.status(second).state == "queued" and ex.queued() == [second] and ex.running is None
    (st2,) = ex.drain()  # the caller may go on
    assert st2.id == second and st2.state == "complete"


def test_close_cancels_the_queue_and_refuses_new_jobs(ckpt, tmp_path):
    ex = Executor(tmp_path / "runs")
    jobs = [ex.submit(_spec(ckpt, seed=s)) for s in (1, 2)]
    ex.close()
    assert ex.closed and [ex.status(j).state for j in jobs] == ["cancelled", "cancelled"]
    with pytest.raises(MGMError, match="closed") as err:
        ex.submit(_spec(ckpt))
    assert "\n" not in str(err.value)
    ex.serve()  # returns at once: closed, nothing queued
    assert all(ex.wait(j, timeout=0).state in FINAL for j in jobs)
    with pytest.raises(MGMError, match="no job"):
        ex.wait("nope", timeout=0)
    open_ex = Executor(tmp_path / "runs")
    open_ex.submit(_spec(ckpt), job_id="x")
    with pytest.raises(MGMError, match="already used"):
        open_ex.submit(_spec(ckpt, seed=8), job_id="x")
    with pytest.raises(MGMError, match="JobSpec"):
        open_ex.submit({"region": "mouth"})


def test_the_executor_imports_no_torch():
    code = "import sys, mgm_analysis.executor; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
