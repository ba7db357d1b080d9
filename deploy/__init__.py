"""Deployment helpers: the services of one machine (deploy/services.py)."""
