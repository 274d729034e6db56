"""Who may call what, before a router runs: body limits, credentials and rate limits, the
typed dependencies that say who the caller is, and signed proofs (wallet links, sign-in)."""
