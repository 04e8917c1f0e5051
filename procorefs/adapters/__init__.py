"""OS bindings: each adapter decodes a callback, calls the core once, encodes the result."""
