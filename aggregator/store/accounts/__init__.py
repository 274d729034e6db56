"""Who is tracked and who may ask: users and their linked wallets, API keys, sessions and
nonces."""
