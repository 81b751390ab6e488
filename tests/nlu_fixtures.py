"""Shared, expensive NLU fixtures (imported into conftest.py)."""

from __future__ import annotations

import pytest

from crowddesk.nlu.encoders import Encoder, load_encoder


@pytest.fixture(scope="session")
def minilm_encoder() -> Encoder:
    """The bundled all-MiniLM-L6-v2, loaded once per test session."""
    return load_encoder("all-MiniLM-L6-v2")
