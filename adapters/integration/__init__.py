"""To and from other systems: the CloudEvents feed and its schemas, NATS, the provincial exchange, the command
intake."""
