"""Test-wide set-up: offline mode, fast pacing, and nbval that applies display updates.

nbval keeps a display's first payload, while JupyterLab and nbclient (which stores our
notebooks) keep its last: ``update_display_data`` replaces the output with the same
``display_id`` and ``clear_output`` clears the cell. The hook below applies those two
messages to the outputs nbval collects for the running cell, the way nbclient does,
and changes nothing else: every other message reaches nbval untouched and all outputs
are compared as before.
"""

from __future__ import annotations

import os
import tempfile

import nbval.plugin as nbval_plugin
from nbformat import from_dict

# Tests never go live and never wait for recorded delays.
for _name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"):
    os.environ.pop(_name, None)
os.environ["QUICKSTART_MODE"] = "offline"
os.environ["QUICKSTART_PACING"] = "fast"
os.environ.setdefault("QUICKSTART_OUTPUT_ROOT", tempfile.mkdtemp(prefix="quickstart-test-run-"))

_original_runtest = nbval_plugin.IPyNbCell.runtest
_original_get_message = nbval_plugin.IPyNbFile.get_kernel_message


def _runtest(self):  # type: ignore[no-untyped-def]
    self.parent._display_cell = self
    self.parent._displays = {}
    self.parent._pending_display = None
    self.parent._clear_pending = False
    try:
        return _original_runtest(self)
    finally:
        self.parent._display_cell = None


def _get_kernel_message(self, timeout=None, stream="iopub"):  # type: ignore[no-untyped-def]
    cell = getattr(self, "_display_cell", None)
    if stream != "iopub" or cell is None:
        return _original_get_message(self, timeout=timeout, stream=stream)
    while True:
        outputs = getattr(cell, "test_outputs", None)
        pending, self._pending_display = self._pending_display, None
        if pending is not None and outputs is not None and len(outputs) == pending[1] + 1:
            # nbval appended the display we let through last time: remember that output.
            self._displays[pending[0]] = outputs[-1]
        msg = _original_get_message(self, timeout=timeout, stream=stream)
        kind, content = msg["msg_type"], msg["content"]
        if kind == "update_display_data":
            target = self._displays.get((content.get("transient") or {}).get("display_id"))
            if target is not None:
                target["data"] = from_dict(content["data"])
                target["metadata"] = from_dict(content.get("metadata") or {})
            continue
        if kind == "clear_output":
            if content.get("wait"):
                self._clear_pending = True
            elif outputs is not None:
                del outputs[:]
                self._displays.clear()
            continue
        if kind in ("display_data", "execute_result", "stream", "error"):
            if self._clear_pending and outputs is not None:
                del outputs[:]
                self._displays.clear()
            self._clear_pending = False
            display_id = (content.get("transient") or {}).get("display_id")
            if kind == "display_data" and display_id and outputs is not None:
                self._pending_display = (display_id, len(outputs))
        return msg


nbval_plugin.IPyNbCell.runtest = _runtest
nbval_plugin.IPyNbFile.get_kernel_message = _get_kernel_message
