from earmark.api.redact import redact


def test_secrets_in_query_strings_are_masked_in_logs():
    line = ('127.0.0.1 - "WebSocket /v1/listen?token=k-secret&url=http%3A%2F%2Fx'
            '&url_headers=%7B%22A%22%7D" 200')
    out = redact(line)
    assert "k-secret" not in out and "%7B%22A" not in out
    assert "url=http%3A%2F%2Fx" in out and "token=***" in out


def test_secrets_in_headers_and_key_shaped_strings_are_masked():
    lines = ["< authorization: Token em_abcdefghijklmnopqrstuvwxyz012",
             "< Authorization: Bearer k-secret",
             "< Sec-WebSocket-Protocol: token, k-secret",
             "< x-chatsight-api-auth: k-secret",
             "key emt_abcdefghijklmnopqrstuvwx was refused"]
    for line in lines:
        out = redact(line)
        assert "k-secret" not in out and "abcdefghijklmnop" not in out, out
    assert redact("< user-agent: Python/3.11") == "< user-agent: Python/3.11"


def test_an_access_log_line_keeps_its_arguments_for_uvicorns_formatter():
    import logging

    from uvicorn.logging import AccessFormatter

    from earmark.api.redact import RedactSecrets

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET",
                                                          "/v1/listen?token=em_abcdef0123456789",
                                                          "1.1", 101), None)
    assert RedactSecrets().filter(record)
    line = AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s").format(record)
    assert "em_abcdef0123456789" not in line and "/v1/listen?token=***" in line
