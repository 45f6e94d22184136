"""HTTP to pods from inside the node's network namespace: one worker thread enters it (setns through
libc, as localkube's port mapper does) and every connection it opens lives there. Nothing is added to
the root namespace: pod addresses are only ever reached from the namespace that routes them."""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

import httpx

from localkube.portmap import enter_netns


class PodNet:
    def __init__(self, netns_name: str, timeout: float = 2.0) -> None:
        self.path = f"/run/netns/{netns_name}"
        self.timeout = timeout
        self.jobs: queue.Queue[tuple[str, str, dict | None, Future] | None] = queue.Queue()
        self.ready: Future = Future()
        self.thread = threading.Thread(target=self._run, name="podnet", daemon=True)
        self.thread.start()
        self.ready.result(timeout=10)

    def _run(self) -> None:
        try:
            enter_netns(self.path)  # this thread only
        except OSError as exc:
            self.ready.set_exception(exc)
            return
        self.ready.set_result(True)
        # trust_env=False: no proxy from the environment; pod addresses are reached here, directly.
        with httpx.Client(timeout=self.timeout, trust_env=False) as client:
            while (job := self.jobs.get()) is not None:
                method, url, body, fut = job
                try:
                    r = client.request(method, url, json=body)
                    try:
                        data = r.json()
                    except ValueError:
                        data = None
                    fut.set_result((r.status_code, data))
                except httpx.HTTPError:
                    fut.set_result((0, None))
                except Exception as exc:  # noqa: BLE001 - to the caller; this thread must live on
                    fut.set_exception(exc)

    def request(self, method: str, url: str, body: dict | None = None) -> tuple[int, object]:
        fut: Future = Future()
        self.jobs.put((method, url, body, fut))
        return fut.result(timeout=self.timeout * 3 + 5)

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(5)
