"""Cedar policy sets shared by the `cedar` target and the authorization of protected
environments: loading with located errors (`policies`, `source`), policy tests (`testing`),
migration snapshots and their stored form (`snapshot`), and where a set is kept (`stores`).

Nothing here imports cedarpy at module level; the functions that need it import it."""
