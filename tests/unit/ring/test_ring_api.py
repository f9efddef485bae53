"""The ring package's public names, pinned because other packages code against them."""

import ring


def test_public_names_are_exported() -> None:
    assert set(ring.__all__) == {
        "DEFAULT_PARTITION_POWER",
        "DEFAULT_REPLICAS",
        "STRATEGY_NAMES",
        "KetamaStrategy",
        "Node",
        "PlacementStrategy",
        "RendezvousStrategy",
        "Ring",
        "RingError",
        "RingSpec",
        "RingWatch",
        "load_ring_file",
        "object_hash",
        "partition_of",
        "save_ring_file",
    }
    for name in ring.__all__:
        assert hasattr(ring, name), name
