"""The `script` target (`ScriptTarget` in `target`): the old framework's shell migrations.

- `target`: the Target the engine drives (`up.sh`, `down.sh`, `verify.sh`)
- `checks`: static checks of a migration's scripts and scope (no process started)
- `proc`: running one script in its own process group, with a deadline and bounded output
- `files`: backups of the files and directories a migration's `scope` names
"""
