"""HTTP/2 for the worker's app kinds: each stream is a channel (``seam.Channel``) of its own.

    accepted connection (ServerHttpProtocol)
        TLS, ALPN chose "h2" ──┐
        cleartext, the first bytes are the preface (h2c, prior knowledge, trusted peers) ──┤
        cleartext, an HTTP/1.1 request with Upgrade: h2c (101, then it is stream 1) ──────┤
                                                                                           ▼
        upgrade(H2Connection) ──► streams (H2Stream) ──► one AppConnection of the kind per stream

hyper-h2 (the ``h2`` package, the ``http2`` extra) is imported only when HTTP/2 is on.
``server.protocol`` knows nothing of this package.
"""
