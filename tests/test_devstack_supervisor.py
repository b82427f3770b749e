"""`make run`'s supervisor: a crashed worker is restarted with backoff, the app's exit stops all."""

import sys
import time

from devstack import run


def test_a_crashing_child_is_restarted_with_backoff_and_the_app_stays(monkeypatch):
    monkeypatch.setattr(run, "say", lambda message: None)
    stack = run.Stack()
    try:
        worker = stack.spawn("worker", [sys.executable, "-c", "import sys; sys.exit(3)"], {}, restart=True)
        app = stack.spawn("app", [sys.executable, "-c", "import time; time.sleep(30)"], {})
        starts, pids = [time.monotonic()], {worker.process.pid}
        deadline = time.monotonic() + 3.6  # exits at once: restarts after 1 s, then 2 s more
        while time.monotonic() < deadline:
            assert stack.check() is None  # never "stop everything" for the worker
            if worker.process.pid not in pids:
                pids.add(worker.process.pid)
                starts.append(time.monotonic())
            time.sleep(0.05)
        gaps = [round(b - a, 1) for a, b in zip(starts, starts[1:])]
        assert len(starts) == 3 and 0.9 <= gaps[0] <= 1.4 and 1.9 <= gaps[1] <= 2.4, gaps
        assert worker.quick_exits >= 2 and app.process.poll() is None

        app.process.kill()
        app.process.wait()
        assert stack.check() == "app exited with -9"
    finally:
        stack.stop()
