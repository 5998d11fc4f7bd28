"""Helpers the tests share: launchers, seeds, stand-ins."""
