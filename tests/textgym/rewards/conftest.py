"""Keep every test's registrations (and entry-point state) out of the other tests."""

import pytest

from textgym.rewards import registry


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch):
    registry.load_entry_points()  # whatever is installed for real is loaded before the snapshot
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_entry_points_loaded", True)
    yield registry._REGISTRY
