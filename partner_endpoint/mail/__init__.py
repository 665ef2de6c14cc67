"""What the service sends: letters as data, templates, rendering, the outbox worker, transports."""
