#!/bin/bash
# Stop the ConvAssist agent, forget its pairing and remove it.
set -euo pipefail
VENV="$HOME/Library/Application Support/ConvAssist/venv"
if [ -x "$VENV/bin/convassist-agent" ]; then
  "$VENV/bin/convassist-agent" uninstall
  "$VENV/bin/convassist-agent" unpair
fi
rm -rf "$VENV"
