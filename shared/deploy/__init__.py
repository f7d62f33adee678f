"""Material a real deployment needs besides the apps: TLS certificates and node keys."""
