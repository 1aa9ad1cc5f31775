"""Shared fixtures: a fake proxy with the molgfn.proxy.Proxy.predict signature; tests marked ``cuda`` run
whenever torch finds a CUDA device and are skipped otherwise."""

from __future__ import annotations

import numpy as np
import pytest


class FakeProxy:
    """Duck-typed stand-in for ``molgfn.proxy.Proxy``: mean pK = 4 + heavy-atom-ish length / 4, std 0.5."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def predict(self, smiles: list[str]) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(list(smiles))
        mean = np.array([4.0 + len(s) / 4.0 for s in smiles])
        return mean, np.full(len(smiles), 0.5)


@pytest.fixture
def fake_proxy() -> FakeProxy:
    return FakeProxy()


def pytest_collection_modifyitems(config, items) -> None:
    cuda = [item for item in items if "cuda" in item.keywords]
    if not cuda:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch finds none)")
    for item in cuda:
        item.add_marker(skip)
