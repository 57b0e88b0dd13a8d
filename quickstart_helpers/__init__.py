"""Helpers for the Gemini streaming quickstarts.

Import what a notebook needs from the submodules, e.g.
``from quickstart_helpers.client import make_client``.
"""

__all__: list[str] = []
