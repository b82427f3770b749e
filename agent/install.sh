#!/bin/bash
# Install the ConvAssist agent for this user, pair it with SERVER_URL and start it at login.
#   agent/install.sh https://convassist.example.com
set -euo pipefail
SERVER_URL="${1:?usage: install.sh SERVER_URL}"
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="$HOME/Library/Application Support/ConvAssist/venv"
python3 -m venv "$VENV"   # Apple's command line tools' Python 3.9 is enough
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "$HERE"
"$VENV/bin/convassist-agent" pair "$SERVER_URL"
"$VENV/bin/convassist-agent" sync
"$VENV/bin/convassist-agent" install
