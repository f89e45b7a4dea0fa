"""Releases: versions, manifests, changelogs, packages and the commit back to git."""
