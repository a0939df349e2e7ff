"""Adapters that talk to stores: they translate raw formats into the readings contract."""
