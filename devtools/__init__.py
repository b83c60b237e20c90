"""Tools for developing maximui, not part of it: the fake Maxim server and the servers benches start.

Imported by tests/, bench/ and `make fake-maxim`; nothing in prompts_app/ or maximui/ imports it.
"""
