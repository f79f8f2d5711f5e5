"""Write the local stack's secret files under ./secrets (docker-compose.yml), with random
values; an existing file is kept, so `make compose-secrets` is safe to rerun.

    python deploy/compose_secrets.py [--dir secrets]
"""

import argparse
import secrets
from pathlib import Path


def write(path: Path, value: str) -> None:
    if path.exists():
        print(f"kept {path}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    # readable by the containers' own users (the api runs as uid 10001); other users of
    # this machine are kept out by the directory's 0700
    path.chmod(0o644)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("secrets"))
    where = parser.parse_args().dir
    where.mkdir(exist_ok=True)
    where.chmod(0o700)  # also when it existed: only this user lists or opens the secrets
    password_file = where / "postgres-password"
    write(password_file, secrets.token_hex(24))  # hex: safe inside a URL
    password = password_file.read_text().strip()
    write(where / "prediction-log-url", f"postgresql://migraine:{password}@postgres:5432/migraine")
    write(where / "api-keys", secrets.token_urlsafe(32))
    write(where / "grafana-admin-password", secrets.token_urlsafe(24))
    # Alertmanager's receivers: fill in the real Slack URL and SMTP password
    write(
        where / "alertmanager" / "slack-webhook-url", "https://hooks.slack.com/services/CHANGE/ME"
    )
    write(where / "alertmanager" / "smtp-password", "change-me")
    write(where / "alertmanager" / "retrain-webhook-token", secrets.token_urlsafe(32))


if __name__ == "__main__":
    main()
