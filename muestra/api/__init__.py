"""Muestra's versioned REST API (/api/v1/), built on django-ninja. See main.py."""
