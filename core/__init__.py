"""Plumbing every app may use: HTTP and API helpers, service errors, publishing to the worker.

The lowest layer. It knows no domain (no users, teams, plans or metrics) and imports nothing
from the project's apps.
"""
