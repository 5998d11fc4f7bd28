"""The benchmark harness: ``python -m bench`` (``make bench``).

Every figure is a ratio measured side by side on this machine, so that a noisy machine moves both sides of it:
``/v1/check`` against a constant endpoint of the same server, the engine against Open Policy Agent, the audit
writer against a raw insert of the same rows. See docs/benchmarks.md for a recorded run and how to read it.
"""
