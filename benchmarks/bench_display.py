"""``stream_markdown`` in a real Jupyter kernel against a print loop of the same chunks.

For 100, 1,000 and 10,000 chunks of about 25 characters, one kernel runs
``stream_markdown(chunks)`` and ``for c in chunks: print(c, end="")`` (then a flush),
alternately. The time is measured inside the kernel (µs per chunk, median of the
runs); the bytes are those of the IOPub messages the cell sent (their JSON content),
counted by the client.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from jupyter_client.manager import start_new_kernel

from benchmarks.registry import Options, Result, benchmark

SETUP = """
import sys, time
from quickstart_helpers.display import stream_markdown
"""

RUN = """
chunks = [f"chunk {{i}} of the stream. " for i in range({n})]
_started = time.perf_counter()
{body}
sys.stdout.flush()
_elapsed = time.perf_counter() - _started
"""

DISPLAY = "_ = stream_markdown(chunks)"
PRINT = 'for _c in chunks:\n    print(_c, end="")'


def _execute(client: Any, code: str, timeout: float = 300) -> tuple[int, float]:
    """Run ``code``; return (IOPub bytes the cell sent, its ``_elapsed`` in seconds)."""
    msg_id = client.execute(code, user_expressions={"elapsed": "_elapsed"})
    sent = 0
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status":
            if msg["content"]["execution_state"] == "idle":
                break
            continue
        if msg["msg_type"] == "error":
            raise RuntimeError("\n".join(msg["content"]["traceback"]))
        if msg["msg_type"] != "execute_input":
            sent += len(json.dumps(msg["content"]))
    reply = client.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:  # e.g. a kernel_info reply
        reply = client.get_shell_msg(timeout=timeout)
    value = reply["content"].get("user_expressions", {}).get("elapsed", {})
    if value.get("status") != "ok":
        raise RuntimeError(f"The kernel did not report the time: {reply['content']}")
    return sent, float(value["data"]["text/plain"])


@benchmark("display", "stream_markdown in a Jupyter kernel vs a print loop")
def bench_display(options: Options) -> list[Result]:
    sizes = (100, 1000) if options.quick else (100, 1000, 10_000)
    manager, client = start_new_kernel(kernel_name="python3")
    results: list[Result] = []
    try:
        _execute(client, SETUP + "_elapsed = 0.0")
        for n in sizes:
            ours, base = [], []
            for _ in range(max(3, options.repeats)):  # alternate, then take medians
                ours.append(_execute(client, RUN.format(n=n, body=DISPLAY)))
                base.append(_execute(client, RUN.format(n=n, body=PRINT)))
            time_ours = statistics.median(t for _, t in ours) / n * 1e6
            time_base = statistics.median(t for _, t in base) / n * 1e6
            bytes_ours = statistics.median(b for b, _ in ours) / 1e6
            bytes_base = statistics.median(b for b, _ in base) / 1e6
            results += [
                Result(
                    "display",
                    f"{n:,} chunks",
                    time_ours,
                    time_base,
                    "µs/chunk",
                    2.0,
                    baseline_name="print loop",
                ),
                Result(
                    "display",
                    f"{n:,} chunks, IOPub data",
                    bytes_ours,
                    bytes_base,
                    "MB",
                    baseline_name="print loop",
                ),
            ]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return results
