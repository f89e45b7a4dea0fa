"""Running plans and operations: the engine, its journal, sessions, commit-back."""
