"""``[auth]`` and ``[state]``: keys as hashes or from the environment (never shown), what each
may use checked against the fleet, limits, public paths, the Redis URL."""

from __future__ import annotations

import hashlib
import re

import pytest

from octoroute.config import TEMPLATE, ConfigError, parse_config
from octoroute.config.schema import DEFAULT_PUBLIC_PATHS, Config
from octoroute.config.summary import summarize
from octoroute.enums import POOLS, Pool

KEY = "sk-octo-0123456789abcdefghijklmnop"
HASH = hashlib.sha256(KEY.encode()).hexdigest()

FLEET = """
[server]
host = "127.0.0.1"
port = 3000

[[models.fast]]
name = "small"
base_url = "http://fast:8000/v1"
max_tokens = 1024

[[models.balanced]]
name = "medium"
base_url = "http://balanced:8000/v1"
max_tokens = 1024

[[models.deep]]
name = "large"
base_url = "http://deep:8000/v1"
max_tokens = 1024

[[embeddings]]
name = "nomic"
base_url = "http://embed:8000/v1"

[routing]
strategy = "rule"

[aliases]
"gpt-4o" = "deep"
"claude-*" = "auto"
"""


def load(extra: str, environ: dict[str, str] | None = None) -> Config:
    return parse_config(FLEET + extra, environ=environ or {})


def problems(extra: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(extra, environ)
    return list(caught.value.problems)


def test_without_auth_every_request_is_served_and_state_is_local() -> None:
    config = load("")

    assert config.auth is None
    assert config.state.redis_url is None


def test_a_key_by_hash_gets_every_default() -> None:
    config = load(f'[auth]\n[[auth.keys]]\nname = "alice"\nkey_sha256 = "{HASH.upper()}"\n')

    assert config.auth is not None
    assert config.auth.public_paths == DEFAULT_PUBLIC_PATHS == ("/health",)
    (key,) = config.auth.keys
    assert key.name == "alice"
    assert key.key_sha256 == HASH
    assert key.tiers == frozenset(POOLS)
    assert key.models is None
    assert not key.admin
    assert (key.requests_per_minute, key.tokens_per_minute, key.max_concurrent) == (
        None,
        None,
        None,
    )


def test_a_key_from_the_environment_is_hashed_and_never_kept() -> None:
    config = load(
        '[auth]\n[[auth.keys]]\nname = "bob"\nkey_env = "BOB_KEY"\n',
        environ={"BOB_KEY": f"  {KEY}\n"},
    )

    assert config.auth is not None
    assert config.auth.keys[0].key_sha256 == HASH
    assert config.auth.keys[0].key_env == "BOB_KEY"
    assert KEY not in repr(config)
    assert KEY not in summarize(config)


def test_permissions_and_limits_are_read() -> None:
    config = load(
        f"""
[auth]
public_paths = ["/health", "/metrics", "/ui*"]
[[auth.keys]]
name = "laptop"
key_sha256 = "{HASH}"
tiers = ["fast", "balanced"]
models = ["auto", "fast", "small", "claude-*"]
admin = true
requests_per_minute = 60
tokens_per_minute = 100000
max_concurrent = 4
"""
    )

    assert config.auth is not None
    assert config.auth.public_paths == ("/health", "/metrics", "/ui*")
    (key,) = config.auth.keys
    assert key.tiers == {Pool.FAST, Pool.BALANCED}
    assert key.models == frozenset({"auto", "fast", "small", "claude-*"})
    assert key.admin
    assert (key.requests_per_minute, key.tokens_per_minute, key.max_concurrent) == (60, 100000, 4)


def test_auth_without_keys_is_refused_with_how_to_make_one() -> None:
    assert problems("[auth]\n") == [
        "auth.keys: [auth] needs at least one [[auth.keys]] entry (octoroute key new NAME prints "
        "one); without [auth] the router serves every request"
    ]


def test_a_key_pasted_where_its_hash_belongs_is_refused_without_being_shown() -> None:
    found = problems(f'[auth]\n[[auth.keys]]\nname = "a"\nkey_sha256 = "{KEY}"\n')

    assert found == [
        "auth.keys[0].key_sha256: must be the key's SHA-256 as 64 hex digits (octoroute key new "
        "prints it; or sha256sum of the key without a newline), not the key itself; the value "
        "is not shown"
    ]
    assert KEY not in "\n".join(found)


def test_a_key_written_into_the_file_gets_advice_not_an_echo() -> None:
    found = problems(f'[auth]\n[[auth.keys]]\nname = "a"\nkey = "{KEY}"\nkey_sha256 = "{HASH}"\n')

    assert len(found) == 1
    assert found[0].startswith("auth.keys[0].key: unknown key; the key itself does not belong")
    assert KEY not in found[0]


def test_a_short_key_in_the_environment_is_refused_without_being_shown() -> None:
    found = problems(
        '[auth]\n[[auth.keys]]\nname = "a"\nkey_env = "A_KEY"\n', environ={"A_KEY": "hunter2"}
    )

    assert found == [
        "auth.keys[0].key_env: environment variable A_KEY holds a key of 7 characters; a client "
        "key needs at least 16 (octoroute key new makes one)"
    ]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            f'key_sha256 = "{HASH}"\nkey_env = "A_KEY"',
            "auth.keys[0].key_env: give key_sha256 or key_env, not both",
        ),
        (
            "",
            "auth.keys[0].key_sha256: required: the key's SHA-256 (octoroute key new NAME prints "
            "it), or key_env naming an environment variable that holds the key",
        ),
        (
            'key_env = "MISSING_KEY"',
            "auth.keys[0].key_env: environment variable MISSING_KEY is not set",
        ),
        (
            f'key_sha256 = "{HASH}"\ntiers = []',
            "auth.keys[0].tiers: must be an array of 'fast', 'balanced', 'deep' or 'embeddings', "
            "got an empty array; remove the key to allow every tier",
        ),
        (
            f'key_sha256 = "{HASH}"\ntiers = ["fast", "balanse"]',
            "auth.keys[0].tiers[1]: must be one of 'fast', 'balanced', 'deep' or 'embeddings', "
            "got string \"balanse\"; did you mean 'balanced'?",
        ),
        (
            f'key_sha256 = "{HASH}"\nmodels = ["smal"]',
            "auth.keys[0].models[0]: \"smal\" is not a model this router serves ('auto', a tier, "
            "an endpoint or embedding model name, or an [aliases] name); did you mean 'small'?",
        ),
        (
            f'key_sha256 = "{HASH}"\ntiers = ["fast"]\nmodels = ["gpt-4o"]',
            "auth.keys[0].models[0]: \"gpt-4o\" is served by 'deep', which this key's tiers do "
            "not allow; add the tier to tiers or remove the model",
        ),
        (
            f'key_sha256 = "{HASH}"\nrequests_per_minute = 0',
            "auth.keys[0].requests_per_minute: must be an integer from 1 to 1000000000, got 0",
        ),
        (
            f'key_sha256 = "{HASH}"\nrpm = 10',
            "auth.keys[0].rpm: unknown key; did you mean 'requests_per_minute'?",
        ),
        (
            f'name = "two words"\nkey_sha256 = "{HASH}"',
            "auth.keys[0].name: must be 1 to 64 letters, digits, '.', '_' or '-', starting with a "
            'letter or digit, got "two words"',
        ),
    ],
)
def test_each_problem_with_a_key_is_named(entry: str, expected: str) -> None:
    if "name =" not in entry:
        entry = f'name = "a"\n{entry}'

    assert problems(f"[auth]\n[[auth.keys]]\n{entry}\n") == [expected]


def test_names_and_keys_must_each_be_unique() -> None:
    found = problems(
        f'[auth]\n[[auth.keys]]\nname = "a"\nkey_sha256 = "{HASH}"\n'
        f'[[auth.keys]]\nname = "a"\nkey_sha256 = "{"0" * 64}"\n'
        f'[[auth.keys]]\nname = "b"\nkey_env = "B_KEY"\n',
        environ={"B_KEY": KEY},
    )

    assert found == [
        'auth.keys[1].name: "a" is already used by auth.keys[0]',
        "auth.keys[2].key_env: is the same key as auth.keys[0]; each key must be its own "
        "(octoroute key new makes one)",
    ]


def test_public_paths_are_paths_or_prefixes() -> None:
    found = problems(
        f'[auth]\npublic_paths = ["metrics", "/a*b", "/health", "/health"]\n'
        f'[[auth.keys]]\nname = "a"\nkey_sha256 = "{HASH}"\n'
    )

    assert found == [
        'auth.public_paths[0]: must be a path such as "/health", or a prefix ending in * such '
        'as "/ui*", got "metrics"',
        'auth.public_paths[1]: must be a path such as "/health", or a prefix ending in * such '
        'as "/ui*", got "/a*b"',
        'auth.public_paths[3]: "/health" is listed twice',
    ]


def test_public_paths_may_be_empty() -> None:
    config = load(f'[auth]\npublic_paths = []\n[[auth.keys]]\nname = "a"\nkey_sha256 = "{HASH}"\n')

    assert config.auth is not None
    assert config.auth.public_paths == ()


def test_state_reads_a_redis_url_and_its_password_from_the_environment() -> None:
    config = load(
        '[state]\nredis_url = "redis://cache.lan:6380/2"\npassword_env = "REDIS_PW"\n',
        environ={"REDIS_PW": "s3cret-pw"},
    )

    assert config.state.redis_url == "redis://cache.lan:6380/2"
    assert config.state.password is not None
    assert config.state.password.reveal() == "s3cret-pw"
    assert "s3cret-pw" not in repr(config)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379", "rediss://cache:6380/0", "unix:///run/redis/redis.sock"]
)
def test_redis_urls_of_every_kind_are_accepted(url: str) -> None:
    assert load(f'[state]\nredis_url = "{url}"\n').state.redis_url == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://cache:6379", "must be a Redis URL"),
        ("redis://:6379", "must be a Redis URL"),
        ("redis://cache:0", "has port 0"),
        ("redis://cache:6379/main", "the path must be a database number"),
        ("redis://user:hunter2@cache:6379/x", "the path must be a database number"),
        ("redis://user:hunter2@[zz::1]:6379/0", "must be a Redis URL"),
        ("redis://[::1:6379/0", "must be a Redis URL"),
        ("redis://cache\\u0000:6379/0", "must not contain control characters"),
    ],
)
def test_a_wrong_redis_url_says_what_form_it_takes(url: str, message: str) -> None:
    (found,) = problems(f'[state]\nredis_url = "{url}"\n')

    assert found.startswith(f"state.redis_url: {message}")
    assert "hunter2" not in found


def test_a_password_variable_needs_a_url_and_a_value() -> None:
    assert problems('[state]\npassword_env = "REDIS_PW"\n', environ={"REDIS_PW": "x"}) == [
        "state.password_env: is only used with redis_url; set redis_url too"
    ]
    assert problems('[state]\nredis_url = "redis://c:1"\npassword_env = "REDIS_PW"\n') == [
        "state.password_env: environment variable REDIS_PW is not set"
    ]


def test_the_templates_commented_example_is_a_valid_auth_and_state_section() -> None:
    start = TEMPLATE.index("# [auth]\n")
    toml = re.compile(r"#\s+(\[.*\]|[a-z_0-9]+ = .*)$")
    example = "\n".join(
        match[1] for line in TEMPLATE[start:].splitlines() if (match := toml.match(line))
    )

    config = parse_config(
        TEMPLATE[:start] + example, environ={"LAPTOP_KEY": KEY, "REDIS_PASSWORD": "pw"}
    )

    assert config.auth is not None
    assert [key.name for key in config.auth.keys] == ["ops", "laptop"]
    assert config.auth.keys[1].tiers == {Pool.FAST, Pool.BALANCED}
    assert config.state.redis_url == "redis://127.0.0.1:6379/0"


def test_check_summarises_the_keys_rights_and_limits_never_the_keys() -> None:
    config = load(
        f'[auth]\n[[auth.keys]]\nname = "ops"\nkey_sha256 = "{HASH}"\nadmin = true\n'
        '[[auth.keys]]\nname = "laptop"\nkey_env = "LAPTOP_KEY"\ntiers = ["fast", "balanced"]\n'
        'models = ["auto", "small"]\nrequests_per_minute = 60\ntokens_per_minute = 100000\n'
        'max_concurrent = 4\n[state]\nredis_url = "redis://u:hunter2@cache:6379/0"\n',
        environ={"LAPTOP_KEY": KEY + "-laptop"},
    )

    text = summarize(config)

    assert (
        "  auth      2 client keys; served without a key: /health\n"
        "              ops     admin; every tier; no limits\n"
        "              laptop  tiers fast, balanced; models auto, small; 60 requests a minute, "
        "100,000 tokens a minute, 4 at once\n"
        "  state     limits shared through redis://u:***@cache:6379/0\n"
    ) in text
    assert KEY not in text
    assert HASH not in text
    assert "hunter2" not in text
