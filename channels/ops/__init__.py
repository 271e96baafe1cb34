"""Operating a desk: its health (chain, head age, peers, alarms), Prometheus metrics and a
health check over HTTP, and JSON logs."""
