"""Outbound network policy: which URLs the server may reach (pulls, downloads, webhooks), and
the webhook deliveries themselves."""
