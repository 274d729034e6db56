"""Hyperliquid (HyperCore) over its HTTP info API: perp and spot clearinghouse states per user,
asset contexts once per poll, under the venue's weight budget."""
