"""The `redis` target (`RedisTarget` in `target`): declarative and `migration.py` migrations.

- `target`: the Target the engine drives (check, backup, run, verify, rollback, restore)
- `checks`: static checks of a migration at validate/plan time (no connection)
- `ops`: the models of `up.yaml`/`down.yaml` operations and `verify.yaml` checks, and scopes
- `run`: running operations and checks against a server or every primary of a cluster
- `python`: `migration.py` migrations (`up(r)`, `down(r)`, `verify(r)`)
- `backup`, `stream`: scoped backup and restore, and their length-prefixed stream format
"""
