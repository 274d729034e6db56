"""The work queue: xmargin's units of work as Procrastinate jobs, on xmargin's own Postgres.

Many `xmargin worker` processes, on any number of machines, run the jobs of one database; a
dispatcher defers rounds of work. The units: a poll of one chain (`poll`) or of one (chain,
shard) of its wallets (`poll_shard`, behind a cursor fence), an EVM head follower run
(`follow`), a chain's sweep (`sweep`: every shard's `poll_shard`, once per period), a publish
pass (`publish`, which defers one `publish_shard` per shard), alert delivery
(`deliver_alerts`) and pruning (`prune`), each calling the very function `xmargin cycle` and
`xmargin run` call. Modules:

- `locks`: task names, and each job's lock and queueing lock (the same string, and the same
  as the work's own advisory lock: `poll:<chain>`, `publish:<i>/<N>`, `publish`, ...);
- `dispatch`: one round deferred (per chain a `poll`, a `poll_shard` per shard, or the head
  follower and the sweeper: `[work] round_polls`); queueing locks make a second dispatch,
  while the round's jobs wait, defer nothing;
- `refresh`: the shards of touched wallets deferred as `poll_shard` jobs (the watchers' way in);
- `follow` and `sweep`: the EVM head follower (`eth_getLogs` → `refresh`) and the sweeper
  (every shard once per `[work] sweep_seconds`, for what logs cannot show);
- `passes` and `fence`: a pass on the queue, and why a shard job writes its shard at most
  once per pass (the shard's advisory lock, then a per-pass marker row in the shard's
  transaction);
- `reaper`: jobs of dead workers retried, never wedging a lock (procrastinate #1543);
- `tasks`: the tasks, no retry strategies (#1543) and idempotent periodic tasks (#1495);
- `app`, `worker`, `schema`: the App on our database URL, the two commands, and how the
  procrastinate schema reaches the database (Alembic migration 0008).

Nothing here changes `xmargin run` (APScheduler) or `xmargin cycle` (cron): the advisory locks
they take keep them, and the workers, from doing one piece of work twice at once.
"""
