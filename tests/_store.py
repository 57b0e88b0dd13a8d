"""The shipped cassettes, loaded once per test process.

The modules that only read cassettes (and serve them with an ``Emulator``) share this
store instead of each loading and checking every cassette again at collection.
"""

from __future__ import annotations

from quickstart_helpers.emulator import CassetteStore

STORE = CassetteStore()
