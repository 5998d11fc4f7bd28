"""``govern``: the operators' command line over the admin API."""
