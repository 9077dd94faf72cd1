"""Reproducible studies behind ``qbm study ...``."""
