"""releasectl: declarative GitOps releases with plans, backups, checks and rollback."""

__version__ = "0.1.0"
