"""The `kubernetes` target (`KubernetesTarget` in `target`): ConfigMaps, Secret references and
ExternalSecrets of a component, one snapshot per migration.

- `target`: the Target the engine drives, in `mode: render` or `mode: apply`
- `checks`: static checks of a migration's objects (no cluster)
- `objects`: loading and validating a migration's objects
- `render`: stable YAML files for Argo CD or Flux (`mode: render`)
- `apply`: server-side apply, prune of managed objects (`mode: apply`)
- `backup`: snapshots of live objects and their restore
The API client and the request helpers are `releasectl.clients.kubernetes`.
"""
