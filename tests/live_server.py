"""A uvicorn server in a thread, for the service tests that need real
sockets (timeouts, head limits, disconnects)."""
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator


@contextmanager
def running(config: Any) -> Iterator[None]:
    """Run `uvicorn.Server(config)` in a daemon thread until the block ends."""
    import uvicorn

    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not srv.started:
        assert thread.is_alive() and time.time() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
