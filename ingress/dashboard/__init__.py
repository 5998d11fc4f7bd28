"""The operator dashboard: a server-rendered web app at ``/dashboard`` (``python -m ingress.dashboard``, port 3000).

A backend-for-frontend: it holds the operator's admin key server-side, keyed by a session id, and calls the admin
API over HTTP with it. The browser only ever holds the session cookie.
"""
