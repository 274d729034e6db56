"""What the chains wrote: each poll's heads, lines and prices, the reads of venues, their
freshness, and pruning of old heads."""
