"""HTTP plumbing every ingress app shares: errors, responses, body limits, request ids, health, metrics."""
