"""A bare Django project: the HTTP benchmark's baseline (not the portal's settings, middleware or URLs)."""
