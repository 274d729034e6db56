"""What publishing wrote: the pass's markets, the latest status per user and its history,
and the operator's reads over them."""
