"""Provenance: the typed records of a run, content keys, and the W3C PROV-JSON export."""
