"""Polling: one chain's adapter read into the store at one read point (`poll`), or one shard
of its wallets behind a cursor fence (`shards`), with reorg verdicts on the heads already
stored (`reorg`)."""

from aggregator.polling.poll import ChainPollResult, poll_chain, poll_chains, wallet_owners

__all__ = ["ChainPollResult", "poll_chain", "poll_chains", "wallet_owners"]
