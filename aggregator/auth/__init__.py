"""Trust primitives: signed ownership proofs (SIWE / CAIP-122, EIP-1271), session tokens, API
keys, rate limits. Pure code and thin chain reads; the store and the HTTP layer use them."""
