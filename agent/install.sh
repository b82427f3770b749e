#!/bin/bash
# Install the ConvAssist agent for this user, pair it with the server and start it at login.
#   agent/install.sh https://convassist.example.com
#   agent/install.sh http://192.168.1.20:3000 --allow-http   # plain http, only on a network you trust
# --yes skips the question "Is this your ConvAssist account?" after the code is approved (scripted installs).
set -euo pipefail   # macOS's bash 3.2: no bash 4 features below
usage="usage: install.sh https://YOUR-SERVER [--allow-http] [--yes]"
SERVER_URL=""
PAIR_FLAGS=()
for arg in "$@"; do
  case "$arg" in
    --allow-http|--yes) PAIR_FLAGS+=("$arg") ;;
    -h|--help) echo "$usage"; exit 0 ;;
    -*) echo "install.sh: unknown option $arg" >&2; echo "$usage" >&2; exit 2 ;;
    *) [ -z "$SERVER_URL" ] || { echo "$usage" >&2; exit 2; }; SERVER_URL="$arg" ;;
  esac
done
[ -n "$SERVER_URL" ] || { echo "$usage" >&2; exit 2; }
echo "Pairing this Mac with the ConvAssist server at $SERVER_URL"
echo "(the address you sign in to; the agent refuses plain http unless you add --allow-http)."
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="$HOME/Library/Application Support/ConvAssist/venv"
python3 -m venv "$VENV"   # Apple's command line tools' Python 3.9 is enough
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "$HERE"
# ${a[@]+...}: an empty array under `set -u` is an error in bash 3.2
"$VENV/bin/convassist-agent" pair "$SERVER_URL" ${PAIR_FLAGS[@]+"${PAIR_FLAGS[@]}"}
"$VENV/bin/convassist-agent" sync
"$VENV/bin/convassist-agent" install
