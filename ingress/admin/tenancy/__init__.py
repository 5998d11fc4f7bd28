"""Data access for tenancy: customers, their API keys and policies, and operators' admin keys.

Plain async functions over an asyncpg pool, shared by the admin API (``ingress.admin``) and the operator CLI
(``ingress.cli.main``), so both validate the same way and answer with the same messages. Inputs are the request
models of ``schemas.admin``; outputs are its response models. SQL is parameterised throughout.
"""
