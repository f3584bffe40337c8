"""The commented starting configuration printed by ``octoroute config``.

It is a complete, valid file (a test parses it) that shows every section, including the optional
ones at their defaults, so a user edits values instead of looking up key names. The endpoint
URLs are placeholders (``config.placeholders.TEMPLATE_HOSTS``, which ``octoroute check``
reports) with a numeric port because the loader checks ports. It listens on loopback: exposing
the router is a decision ``docs/security.md`` explains, not a default.
"""

TEMPLATE = """\
# Octoroute configuration
#
# Octoroute answers OpenAI-compatible requests and sends each one to one of three tiers of your
# own models. Check this file with:  octoroute check --config config.toml
# ... and reach every server it names:  octoroute check --config config.toml --probe
# No servers yet? Point base_url at 127.0.0.1 ports, then:  octoroute simulate --config config.toml
# Every key is described in docs/configuration.md. Unknown keys are errors, so typos show up.

# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------
[server]
host = "127.0.0.1"                 # interface to listen on: this machine only. "0.0.0.0" (every
                                   # interface) lets your whole network use every model: first
                                   # read docs/security.md ("Exposing the router safely")
port = 3000                        # TCP port; 0 picks a free one (logged at start-up)
request_timeout_seconds = 30       # per-attempt upstream timeout, 1..300, unless [timeouts] says
max_request_bytes = 8388608        # largest request body accepted (8 MiB); bigger gets HTTP 413
max_in_flight = 1024               # requests answered at once; more get 503 + Retry-After at once
client_header_timeout_seconds = 10 # a client must send its request head within this time
keepalive_idle_seconds = 75        # idle kept-alive client connections are closed after this
stream_keepalive_seconds = 15      # a stream quiet this long gets a keep-alive (comment or ping)
# cors_origins = ["https://app.example.com"]  # browser apps allowed to call the API; "*" = any;
                                   # unset or []: no CORS headers at all
# allowed_hosts = ["router.lan", "*.lan"]  # Host names the router answers to (DNS rebinding);
                                   # localhost always works; unset or []: any Host
workers = 1                        # server processes sharing the port; serve --workers overrides
watch_config = false               # reload this file when it changes (SIGHUP and
                                   # POST /admin/reload reload it too)

# ---------------------------------------------------------------------------------------------
# Model tiers: every tier needs at least one endpoint
#   fast     - small models (~8B) for chat and short questions: cheapest, quickest
#   balanced - mid-size models (~30B) for code, summaries and explanations
#   deep     - large models (120B+) for analysis, creative writing and hard reasoning
# Each [[models.<tier>]] block is one OpenAI-compatible server (Ollama, LM Studio, llama.cpp,
# vLLM, ...). Repeat a block to add replicas; within a tier the highest priority is used first,
# and endpoints of equal priority share the load by weight.
# ---------------------------------------------------------------------------------------------
[[models.fast]]
name = "your-8b-model"             # model id sent upstream as "model"
base_url = "http://your-server:8000/v1"  # API root, must end with /v1
max_tokens = 4096                  # used when a request does not set max_tokens
temperature = 0.7                  # used when a request does not set temperature, 0..2
weight = 1.0                       # share of traffic among endpoints of equal priority, > 0
priority = 1                       # 0..255; higher is tried first, lower ones are fallbacks
# api_key_env = "FAST_API_KEY"     # name of an environment variable holding a bearer key
max_connections = 100              # connections open to this server at once; more requests wait
# compat = ["developer_to_system"] # rewrites for servers that reject newer chat fields (see docs)
# native = ["responses"]           # the server speaks /v1/responses itself: pass it through
#                                # ("messages": /v1/messages; "ollama": Ollama's /api/...)
# kind = "ollama"                  # openai, ollama, llamacpp or vllm: the prober also reads
                                   # which models are loaded, the context length and slots
# max_concurrent = 4               # requests it serves at once (its slots); more wait in a queue
# context_window = 8192            # tokens the server runs the model with; unset: discovered
# For https servers only:
# tls_ca_file = "/etc/octoroute/private-ca.pem"  # trust this CA bundle instead of the system's
# tls_verify = false               # accept any certificate (a warning is logged at start-up)
# tls_client_cert = "/etc/octoroute/client.pem"  # mutual TLS: the certificate to present
# tls_client_key = "/etc/octoroute/client.key"   # its key, if not inside tls_client_cert

# A second fast replica (same model on another machine):
# [[models.fast]]
# name = "your-8b-model"
# base_url = "http://another-server:8000/v1"
# max_tokens = 4096
# temperature = 0.7
# weight = 1.0
# priority = 1

[[models.balanced]]
name = "your-30b-model"
base_url = "http://your-server:8000/v1"
max_tokens = 8192
temperature = 0.7
weight = 1.0
priority = 1

[[models.deep]]
name = "your-120b-model"
base_url = "http://your-server:8000/v1"
max_tokens = 16384
temperature = 0.7
weight = 1.0
priority = 1
# api_key_env = "DEEP_API_KEY"     # e.g. a vLLM server started with --api-key

# ---------------------------------------------------------------------------------------------
# Embedding models (optional): served at POST /v1/embeddings, never routed; the same keys as
# tier endpoints except max_tokens and temperature. Endpoints sharing a name are replicas of
# one model; "auto" means the first model listed. Names must differ from the tiers' names.
# ---------------------------------------------------------------------------------------------
# [[embeddings]]
# name = "nomic-embed-text"
# base_url = "http://your-server:11434/v1"
# weight = 1.0
# priority = 1

# ---------------------------------------------------------------------------------------------
# Routing: how requests with model "auto" pick a tier
#   rule    - keyword and size rules, instant (well under 1 ms)
#   learned - a small classifier trained on labelled requests, instant, with a confidence
#             (recommended: on the frozen test split it beats rule, see docs/routing.md)
#   llm     - asks a model of router_tier to choose (one extra short call, ~250 ms)
#   hybrid  - the learned classifier first, the router model only when it is unsure
# Clients can also name a tier ("fast", "balanced", "deep") or an endpoint name directly.
# ---------------------------------------------------------------------------------------------
[routing]
strategy = "learned"
default_importance = "normal"      # importance of requests that do not say: low, normal or high
router_tier = "balanced"           # tier whose model makes llm/hybrid decisions
default_tier = "balanced"          # tier used when no rule matches and no model decides
# Placement: which instance of the chosen tier answers (docs/configuration.md#placement)
placement = "fleet"                # fleet: slots, warm models, context windows, affinity;
                                   # static: v1's priority and weight only
overflow = "off"                   # up: a routed request waiting for a full tier goes up a tier
overflow_after_ms = 1000           # ...after waiting this long
cold_after_ms = 10000              # wait this long for a loaded model's slot before a cold one
prewarm = false                    # load the model on a cold deep instance ahead of time
affinity = true                    # keep a conversation on one replica (its prompt cache)
affinity_imbalance = 2             # ...unless it has this many more requests than the least busy
confidence_threshold = 0.6         # hybrid: ask the router model when the classifier is less sure
# model_file = "my-model.json.gz"  # learned/hybrid: a model from `octoroute train` (path relative
                                   # to this file); default: the model shipped with octoroute

[routing.router_timeouts]          # seconds the router model may take, per router tier
fast = 10
balanced = 10
deep = 10

# ---------------------------------------------------------------------------------------------
# Model aliases (optional): names clients hard-wire, pointed at a tier, "auto", an endpoint or
# an embedding model.
# Exact names win over glob patterns (*, ?, [abc]); among patterns the first listed wins.
# ---------------------------------------------------------------------------------------------
# [aliases]
# "gpt-4o-mini" = "fast"
# "gpt-4o*" = "deep"
# "claude-*" = "auto"
# "text-embedding-3-*" = "nomic-embed-text"   # needs that [[embeddings]] model

# ---------------------------------------------------------------------------------------------
# Observability: metrics are always served at GET /metrics
# ---------------------------------------------------------------------------------------------
[observability]
log_level = "info"                 # debug, info, warning, error or critical
log_format = "text"                # text for people, json for log collectors (one object a line)

# ---------------------------------------------------------------------------------------------
# Per-tier timeouts (optional): override server.request_timeout_seconds, 1..300 seconds
# ---------------------------------------------------------------------------------------------
[timeouts]
fast = 15
balanced = 30
deep = 60
# embeddings = 30                  # POST /v1/embeddings; unset: server.request_timeout_seconds
# stream_total_seconds = 600       # longest a stream may run; unset: no total limit, only the
                                   # per-tier timeout between two pieces of a stream

# ---------------------------------------------------------------------------------------------
# Health: endpoints are probed with GET {base_url}/models
# ---------------------------------------------------------------------------------------------
[health]
interval_seconds = 30              # time between probes, at least 0.1
failure_threshold = 3              # consecutive failures (probes or requests) before skipping
probe_timeout_seconds = 5          # how long one probe may take
# Real requests are watched too: an instance that keeps failing them (a server that answers the
# probe but hangs on chat) is ejected for a while, whatever the probes say.
eject_after_failures = 3           # consecutive timeouts, connect errors or 5xx that eject it
eject_base_seconds = 30            # first ejection; the n-th lasts n times as long...
eject_max_seconds = 300            # ...up to this; then one real request is let through to test it

# ---------------------------------------------------------------------------------------------
# Limits on one chat request (long agent sessions need large values) and on upstream answers
# ---------------------------------------------------------------------------------------------
[limits]
max_messages = 2048                # messages per request
max_content_chars = 2000000        # characters of message text per request
max_response_bytes = 67108864      # largest non-streaming upstream answer read (64 MiB)
max_event_bytes = 4194304          # largest single event of an upstream stream (4 MiB)
responses_store = 1000             # recent /v1/responses answers kept for previous_response_id
queue_timeout_seconds = 30         # longest wait for a slot when every instance is at its
                                   # max_concurrent; then 503 fleet_busy
max_queue = 256                    # requests waiting for a slot per tier; more get 503 at once

# ---------------------------------------------------------------------------------------------
# Dashboard: GET /ui shows the fleet, the traffic and why each request went where it went
# (an admin key is needed with [auth]); GET /admin/state and /admin/events are its JSON API.
# Each server process (worker) keeps its own last hour of traffic and decisions, in memory.
# ---------------------------------------------------------------------------------------------
[ui]
enabled = true                     # false: /ui and the state API answer 404, nothing recorded
show_prompts = false               # true: each decision keeps a preview of the latest user
                                   # turn (prompts are private: off by default)
decisions = 100                    # recent decisions kept, 1..10000
prompt_preview_chars = 200         # longest preview with show_prompts, 1..2000

# ---------------------------------------------------------------------------------------------
# Client keys (optional): with [auth], every request needs a key (Authorization: Bearer,
# x-api-key or api-key) except on public_paths, and /metrics, /models, /route, /admin/* need an
# admin key. Make a key with:  octoroute key new NAME   (it prints the lines to paste here).
# Limits are per key: requests and estimated tokens a minute, and requests at once (429 above).
# ---------------------------------------------------------------------------------------------
# [auth]
# public_paths = ["/health"]       # served without a key (e.g. add "/metrics" for Prometheus)
#
# [[auth.keys]]
#   name = "ops"                   # shown in logs and metrics instead of the key
#   key_sha256 = "4a67a34508abd11621b20a6bea3f6b74db7ce8930589b7ec78f87696c8c02b43"
#   admin = true
#
# [[auth.keys]]
#   name = "laptop"
#   key_env = "LAPTOP_KEY"         # or read the key from this environment variable
#   tiers = ["fast", "balanced"]   # what it may use ("auto" is capped to these); default: all
#   models = ["auto", "fast"]      # what it may name in "model"; default: anything
#   requests_per_minute = 60
#   tokens_per_minute = 100000     # estimated prompt tokens + the most the answer may take
#   max_concurrent = 4

# ---------------------------------------------------------------------------------------------
# Shared state (optional): without it each process counts the limits above on its own (with
# --workers N, each worker separately). With Redis every worker and router instance shares
# them; if Redis goes away, requests are still served and counted per process until it is back.
# ---------------------------------------------------------------------------------------------
# [state]
# redis_url = "redis://127.0.0.1:6379/0"
# password_env = "REDIS_PASSWORD"  # if the server needs a password (kept out of this file)
"""
"""A valid, commented config: every section, the optional ones at their defaults."""
