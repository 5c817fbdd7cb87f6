"""One frozen settings object, read from flags and ``EARMARK_*`` environment variables."""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qsl

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Server settings. Every field can be set as ``EARMARK_<NAME>`` (e.g. ``EARMARK_PORT``)."""

    model_config = SettingsConfigDict(env_prefix="EARMARK_", frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="TCP port")
    model: str | None = Field(
        None,
        description="faster-whisper model name, local CTranslate2 folder, or unset for the "
        "bundled Whisper tiny.en",
    )
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$", description="auto, cpu or cuda")
    compute_type: str | None = Field(
        None, description="CTranslate2 compute type (default: float16 on CUDA, int8 on CPU)"
    )
    cpu_threads: int = Field(
        0, ge=0, description="threads per model worker on CPU (0: cores / workers)"
    )
    model_workers: int = Field(
        0, ge=0, le=16, description="model calls that run at once (0: 2 on CPU, so a final "
        "need not wait for a running batch of interims; 1 on CUDA)"
    )
    api_keys: str = Field(
        "", description="comma-separated API keys, each plain or as sha256:<hex of the key>; "
        "keys made with `earmark keys create` are added. None at all: no auth (loopback only)"
    )
    admin_api_keys: str = Field(
        "", description="comma-separated keys (plain or sha256:<hex>) for operator routes "
        "(GET /v1/cluster); without any key configured at all, those routes are open as "
        "every route is")
    node_name: str = Field("", max_length=200, description="this node's name in GET "
                           "/v1/cluster (default: host name and port)")
    rpm_per_key: int = Field(600, ge=0, description="HTTP requests and socket opens per minute "
                             "per API key, bursts up to the whole minute (0: no limit; "
                             "`earmark keys create --rpm` sets one key's)")
    max_sessions_per_key: int = Field(32, ge=1, description="live sessions (sockets, WebRTC) "
                                      "at once per API key")
    token_ttl_s: float = Field(30.0, gt=0, le=3600, description="default lifetime of a "
                               "temporary socket token from POST /v1/auth/grant (s)")
    allow_unauthenticated_remote: bool = Field(
        False, description="serve a non-loopback address without API keys (not recommended)"
    )
    max_sessions: int = Field(64, ge=1, description="live sessions at once; more get close 1013")
    header_timeout_s: float = Field(
        10.0, gt=0, description="close an HTTP connection that has not sent a whole request "
        "line and headers this long after it opened (or after its last response)"
    )
    idle_timeout_s: float = Field(
        10.0, gt=0, description="close a socket after this long without audio or KeepAlive"
    )
    max_frame_bytes: int = Field(1 << 20, ge=1024, description="largest binary frame accepted")
    partial_interval_ms: int = Field(400, ge=100, description="new speech between interims")
    max_utterance_s: float = Field(15.0, ge=2.0, le=28.0, description="forced final length")
    beam_size: int = Field(5, ge=1, le=10, description="beam size for finals")
    partial_beam_size: int = Field(1, ge=1, le=10, description="beam size for interims")
    finalize_beam_size: int | None = Field(
        None, ge=1, le=10, description="beam size for the final that answers a Finalize "
        "(default: --beam-size)")
    finalize_early_ms: int | None = Field(
        None, ge=0, le=2000, description="for a client that sends Finalize: silence after "
        "which its final is decoded speculatively (default: 200 ms, as for every client)")
    sync_beam_size: int = Field(1, ge=1, le=10, description="beam size for /v2/stream (greedy "
                                "matched beam 5's WER on short reads and is ~30 % faster)")
    music_threshold: float = Field(
        0.007, ge=0, le=1, description="drop a decode when Whisper's chance of opening "
        "with a music note reaches this: sung lyrics are "
        "not speech; 1 turns the check off"
    )
    window_bucket_s: float = Field(5.0, gt=0, description="decode window rounding (s)")
    min_window_s: float = Field(10.0, ge=0, le=30, description="shortest decode window (s)")
    partial_min_window_s: float = Field(
        5.0, ge=0, le=30, description="shortest decode window for interims (s): cheaper "
        "than finals' windows, at some interim accuracy"
    )
    partial_min_pad_s: float = Field(
        2.0, ge=0, le=10, description="least silence after the audio in an interim's window (s)"
    )
    partial_window_bucket_s: float = Field(
        5.0, gt=0, description="interim decode window rounding (s)"
    )
    min_pad_s: float = Field(2.0, ge=0, le=10, description="least silence after the audio in "
                             "a decode window (s); less makes Whisper loop")
    max_batch: int | None = Field(
        None, ge=1, le=256, description="requests per model batch (default: 4 on CPU, 32 on CUDA)"
    )
    max_wait_ms: float | None = Field(
        None, ge=0, le=200, description="wait this long for a batch to fill (default: 0 on "
        "CPU, 10 on CUDA)"
    )
    capacity_headroom: float = Field(
        0.5, gt=0, le=1, description="share of model time finals may use when every session "
        "talks (the rest is for interims); sets the measured session capacity (0 < x <= 1)"
    )
    admit_by_capacity: bool = Field(
        True, description="refuse sessions past the measured capacity (off: only max_sessions)"
    )
    shed_partials_after_s: float = Field(
        0.25, gt=0, description="when finals wait this long in the queue, interims pause "
        "(0.25 s beat 0.5 s on final and first-seen latency alike at 8-24 streams)"
    )
    vad_threshold: float = Field(0.5, gt=0, lt=1, description="Silero speech probability")
    outbox_max_messages: int = Field(
        256, ge=8, description="unsent messages per socket before it is closed as a slow reader"
    )
    url_allow_networks: str = Field(
        "", description="comma-separated CIDRs that pulled URLs may resolve to even though "
        "they are private or loopback (e.g. 10.0.0.0/8)"
    )
    url_reconnect_budget_s: float = Field(
        30.0, ge=0, description="how long a dropped live source is retried before failing"
    )
    max_url_pulls: int = Field(16, ge=0, description="URL pulls at once")
    max_webrtc_peers: int = Field(32, ge=0, description="WebRTC peer connections at once")
    webrtc_ice_servers: str = Field(
        "", description="comma-separated STUN/TURN URLs for the server's WebRTC peers, e.g. "
        "stun:stun.example.org:3478 (none by default: host candidates only)"
    )
    webrtc_turn_username: str = Field("", description="username for the TURN servers")
    webrtc_turn_password: str = Field("", description="password for the TURN servers")
    tagging: bool = Field(True, description="load the tag model; sessions tag unless "
                          "they ask tagging=false (off: no tagging at all)")
    background_nice: int = Field(10, ge=0, le=19, description="how much lower the CPU "
                                 "priority of tag scoring is than transcription's (Linux nice "
                                 "steps; 0: the same)")
    tag_model: str | None = Field(None, description="sentence-transformers model folder for "
                                  "tags (default: the bundled all-MiniLM-L6-v2)")
    tag_window_s: float = Field(60.0, ge=5, le=600, description="seconds of speech tags are "
                                "computed over")
    tag_interval_s: float = Field(3.0, ge=0.5, le=60, description="least audio time between "
                                  "two tag updates")
    max_tag_collections: int = Field(50, ge=1, description="private tag collections per key")
    max_tags_per_collection: int = Field(200, ge=1, le=2000, description="tags in one "
                                         "collection")
    data_dir: str = Field("earmark-data", description="folder for the SQLite database "
                          "(jobs, conversations, webhook outbox, tag collections) and uploads")
    database_url: str | None = Field(None, description="a SQLAlchemy URL for the database "
                                     "instead of the SQLite file in data_dir, e.g. "
                                     "postgresql+psycopg://earmark@db/earmark (the schema "
                                     "is created or migrated at start)")
    max_upload_bytes: int = Field(1 << 30, ge=1024, description="largest audio file a job "
                                  "may upload (bytes)")
    max_job_audio_s: float = Field(4 * 3600, gt=0, description="longest audio a file job "
                                   "takes (s)")
    max_jobs_per_key: int = Field(10, ge=1, description="scheduled + in-progress file jobs "
                                  "per API key; more get 429")
    job_workers: int = Field(2, ge=1, le=32, description="file jobs transcribed at once (their "
                             "chunks share the scheduler's batches)")
    audio_retention_h: float = Field(24.0, ge=0, description="hours a finished job's audio "
                                     "is kept (0: deleted at once)")
    result_retention_h: float = Field(720.0, gt=0, description="hours a conversation's "
                                      "transcript is kept after its last job finished")
    tag_session_s: float = Field(60.0, gt=0, le=3600, description="stream seconds a "
                                 "tagging session (POST /stream/tag) listens for")
    stream_segment_s: float = Field(5.0, ge=1, le=60, description="stream seconds per "
                                    "stream-job callback")
    stream_segment_deadline_s: float = Field(
        1.0, ge=0, le=60, description="a stream-job segment's callback goes at most this long "
        "after the segment's end (stream time), with the words final by then; a word final "
        "later goes in the next segment (0: wait until all of its words are final)")
    public_url: str = Field("", max_length=2000, pattern=r"^(https?://[^\s/]+(/[^\s]*)?)?$",
                            description="this server's external base URL (e.g. "
                            "https://earmark.example.com), for absolute links in callbacks "
                            "(redacted_audio_url); empty: paths on this server")
    stream_partial_callbacks: bool = Field(True, description="stream jobs also send the open "
                                           "segment's words so far (message_type "
                                           "PartialTranscript), at most once a second")
    stream_no_data_s: float = Field(60.0, gt=0, description="a stream job stops (status 15) "
                                    "after this long with no audio arriving (s; silence and "
                                    "music are audio)")
    max_streams_per_key: int = Field(5, ge=1, description="running stream jobs per API key")
    stream_webhook_url: str = Field("", description="stream-job callback URL for keys that "
                                    "set none with PUT /v1/settings/webhook")
    webhook_secret: str = Field("", description="master secret the per-key webhook signing "
                                "secrets derive from (empty: a random one kept in data_dir)")
    webhook_timeout_s: float = Field(10.0, gt=0, le=120, description="one webhook request's "
                                     "time limit (s)")
    webhook_retry_base_s: float = Field(2.0, gt=0, description="first retry delay of a "
                                        "failed webhook; doubles per attempt (s)")
    webhook_retry_cap_s: float = Field(600.0, gt=0, description="longest delay between "
                                       "webhook retries (s)")
    webhook_retry_window_h: float = Field(24.0, gt=0, description="hours a webhook is retried "
                                          "before it is abandoned")
    listen_defaults: str = Field(
        "", description="default query parameters of the live socket and WebRTC, as a query "
        "string (e.g. tagging=false&endpointing=300): a client's own parameters override "
        "them; for frameworks that cannot add Earmark's parameters to their URL"
    )
    log_level: str = Field("info", description="debug, info, warning or error")

    @field_validator("listen_defaults")
    @classmethod
    def _check_listen_defaults(cls, value: str) -> str:
        # Checked at start-up, so a typo fails the server, not every client's connection.
        from earmark.dialects.deepgram import check_listen_defaults

        check_listen_defaults(value)
        return value

    @property
    def listen_default_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.listen_defaults, keep_blank_values=True)

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    @property
    def binds_loopback_only(self) -> bool:
        if self.host in ("localhost",):
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
