"""Kubernetes quantities in every spelling clusters use are parsed exactly."""

import pytest

from shared.sources.quantity import QuantityError, cpu_millicores, memory_bytes


@pytest.mark.parametrize(
    ("text", "millicores"),
    [("250m", 250), ("0.5", 500), ("2", 2000), ("1500m", 1500), ("0.1", 100), ("1e-3", 1), ("100u", 1),
     ("1.25", 1250), (".5", 500), ("3k", 3_000_000)],
)
def test_cpu_quantities_become_millicores(text, millicores):
    assert cpu_millicores(text) == millicores


@pytest.mark.parametrize(
    ("text", "size_bytes"),
    [("128Mi", 134_217_728), ("1G", 1_000_000_000), ("0.1Gi", 107_374_183), ("1e3", 1000),
     ("512M", 512_000_000), ("1Gi", 1_073_741_824), ("1.5Ki", 1536), ("123", 123), ("1E3", 1000),
     ("2Ti", 2 * 1024**4)],
)
def test_memory_quantities_become_bytes(text, size_bytes):
    assert memory_bytes(text) == size_bytes


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "12Qi", "Mi", "1 Gi", "--1"])
def test_malformed_quantity_is_refused_with_its_text(text):
    with pytest.raises(QuantityError, match="not a Kubernetes quantity"):
        memory_bytes(text)
