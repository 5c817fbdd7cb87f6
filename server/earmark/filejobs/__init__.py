"""Async audio-file jobs (seed 003): decoding, the offline transcription path, the job runner."""
