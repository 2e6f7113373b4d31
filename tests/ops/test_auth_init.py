"""`kpisync auth` (OS keyring, no echo), `kpisync init` (no plain secrets in kpisync.toml) and
`kpisync config check --offline` (where each secret comes from)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from kpisync.cli.auth_cmd import is_secret
from kpisync.connectors.zendesk import ZendeskConnector

from .conftest import cli, with_file_keyring, write_config

SECRET = "zd-secret-7d2f9a41c0"


def test_auth_without_a_keyring_backend_says_what_to_do(tmp_path: Path, env: dict[str, str]) -> None:
    done = cli("auth", "set", "zendesk", "api_token", env=env, cwd=tmp_path, input=SECRET + "\n")
    assert done.returncode == 2
    assert done.stderr.startswith("error: no OS keyring is available here")
    assert "KPISYNC_<SOURCE>_<FIELD>" in done.stderr and "env:NAME" in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_auth_set_and_delete_through_the_keyring(tmp_path: Path, env: dict[str, str]) -> None:
    keyring_file = tmp_path / "keyring.json"
    env = with_file_keyring(env, keyring_file)
    write_config(tmp_path / "kpisync.toml", {"zendesk_eu": {"connector": "zendesk", "subdomain": "acme-eu", "email": "ops@acme.test"}})

    done = cli("auth", "set", "zendesk_eu", "api_token", env=env, cwd=tmp_path, input=SECRET + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("stored zendesk_eu.api_token in the keyring (") and "file_keyring.FileKeyring" in done.stdout
    assert SECRET not in done.stdout + done.stderr
    assert json.loads(keyring_file.read_text()) == {"kpisync/zendesk_eu.api_token": SECRET}

    check = cli("config", "check", "--offline", env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "zendesk_eu (zendesk): valid [api_token from keyring]"

    assert cli("auth", "delete", "zendesk_eu", "api_token", env=env, cwd=tmp_path).returncode == 0
    assert json.loads(keyring_file.read_text()) == {}
    again = cli("auth", "delete", "zendesk_eu", "api_token", env=env, cwd=tmp_path)
    assert again.returncode == 2 and "the keyring holds no zendesk_eu.api_token" in again.stderr
    missing = cli("config", "check", "--offline", env=env, cwd=tmp_path)
    assert missing.returncode == 1
    assert "zendesk_eu: set 'email' and 'api_token', or 'oauth_token'" in missing.stdout


def test_auth_refuses_plain_settings_and_warns_when_shadowed(tmp_path: Path, env: dict[str, str]) -> None:
    env = with_file_keyring(env, tmp_path / "keyring.json")
    plain = cli("auth", "set", "zendesk", "subdomain", env=env, cwd=tmp_path, input="acme\n")
    assert plain.returncode == 2
    assert "'subdomain' is not a secret setting of zendesk (zendesk; secret settings: ai_agents_api_key, api_token, oauth_token)" in plain.stderr
    shadowed = cli("auth", "set", "zendesk", "api_token", env=dict(env, KPISYNC_ZENDESK_API_TOKEN="other"), cwd=tmp_path, input=SECRET + "\n")
    assert shadowed.returncode == 0
    assert "note: the environment variable KPISYNC_ZENDESK_API_TOKEN also sets api_token and wins over the keyring" in shadowed.stderr


def test_config_check_warns_about_a_plain_text_secret(tmp_path: Path, env: dict[str, str]) -> None:
    write_config(tmp_path / "kpisync.toml", {"zendesk": {"subdomain": "acme", "email": "ops@acme.test", "api_token": SECRET}})
    done = cli("config", "check", "--offline", env=env, cwd=tmp_path)
    assert done.returncode == 0
    assert "api_token from kpisync.toml (plain text)" in done.stdout
    assert "warning: api_token is written in plain text in the config file" in done.stdout
    assert SECRET not in done.stdout + done.stderr


def init_answers(secret_choice: str, secret_line: str | None) -> str:
    """Answers in the order `kpisync init` asks them for the zendesk connector's settings."""
    plain = {"subdomain": "acme", "email": "ops@acme.test"}
    answers = ["zendesk", ""]  # connector list, source name (default)
    for field, info in ZendeskConnector.config_model.model_fields.items():
        if is_secret(info.annotation):
            if field == "api_token":
                answers.append(secret_choice)
                if secret_line is not None:
                    answers.append(secret_line)
            else:
                answers.append("s")
        elif info.is_required() or info.default is None:
            answers.append(plain.get(field, ""))
    return "\n".join(answers) + "\n"


def test_init_keeps_the_secret_in_the_keyring(tmp_path: Path, env: dict[str, str]) -> None:
    keyring_file = tmp_path / "keyring.json"
    env = with_file_keyring(env, keyring_file)
    done = cli("init", env=env, cwd=tmp_path, input=init_answers("k", SECRET))
    assert done.returncode == 0, done.stdout + done.stderr
    text = (tmp_path / "kpisync.toml").read_text()
    assert SECRET not in text and SECRET not in done.stdout + done.stderr
    assert tomllib.loads(text)["sources"] == {"zendesk": {"subdomain": "acme", "email": "ops@acme.test"}}
    assert "# api_token: in the OS keyring" in text and "# store_bodies = false" in text
    assert json.loads(keyring_file.read_text()) == {"kpisync/zendesk.api_token": SECRET}
    assert "zendesk: settings complete" in done.stdout


def test_init_without_keyring_references_an_env_variable_and_appends(tmp_path: Path, env: dict[str, str]) -> None:
    config = tmp_path / "kpisync.toml"
    config.write_text('# mine\n[sources.zendesk]\nsubdomain = "acme"\nemail = "a@acme.test"\napi_token = "env:A"\n')
    done = cli("init", env=env, cwd=tmp_path, input=init_answers("", "ZD_EU_TOKEN").replace("zendesk\n\n", "zendesk\nzendesk_eu\n", 1))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no OS keyring here" in done.stdout
    text = config.read_text()
    assert text.startswith('# mine\n[sources.zendesk]\nsubdomain = "acme"\n')  # appended, never rewritten
    sources = tomllib.loads(text)["sources"]
    assert sources["zendesk_eu"] == {"connector": "zendesk", "subdomain": "acme", "email": "ops@acme.test", "api_token": "env:ZD_EU_TOKEN"}
    assert "set ZD_EU_TOKEN in the environment" in done.stdout
    assert "zendesk_eu: not ready yet — zendesk_eu: setting 'api_token' refers to $ZD_EU_TOKEN, which is not set" in done.stdout
