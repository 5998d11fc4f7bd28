"""Authentication of customer (``sk_live_``) and operator (``sk_admin_``) keys."""
