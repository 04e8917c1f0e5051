"""Filesystem semantics on top of the API client: path-based, synchronous, thread-safe."""
