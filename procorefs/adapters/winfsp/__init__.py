"""The WinFsp adapter (winfspy) for Windows; winfspy is imported in one module only."""
