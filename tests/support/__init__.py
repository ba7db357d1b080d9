"""Test support: loopback servers, DAG builders, real-process helpers and the session bootstrap."""
