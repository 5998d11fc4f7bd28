"""The ingress service: the check route, the admin and analytics APIs, and the pure decision engine."""
