"""Kopf wiring: ImageStream events, the import workers and the scheduler. The only package that knows Kopf."""
