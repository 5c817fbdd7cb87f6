"""Job services on the live pipeline: stream jobs (seed 004) and tagging sessions (seeds
000/001). Each task is a server-side session on a pulled URL (``ingest/pull_session``); the
routes in ``api/`` only start, stop and read them."""
