"""Observing runs: typed events that the engine, the session and the lock code emit
(`events`), and what consumes them: log records through `logging` (`events.LogEvents`, shaped
by `logs`), and Prometheus metrics (`summary` computes them from the recorded state and
history, `metrics` turns them into prometheus-client families, `publish` writes a textfile and
pushes to a Pushgateway, live during a run and at its end).

Nothing here prints; prometheus_client is imported only when metrics are asked for.
"""
