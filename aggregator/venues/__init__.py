"""Venue-native risk math: each venue's own margin and liquidation rules, kept beside the
unified engine (design §7a) and checked against the numbers the venue itself publishes.

Pure functions over plain data: no I/O, no store, no chain clients.
"""
