"""Earmark: self-hosted real-time speech transcription and audio tagging server."""

__version__ = "0.1.0"
