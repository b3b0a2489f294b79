#!/bin/sh
# `apt-get update` for the project's scripts, which install what they lack. A
# mirror caught mid-sync fails one index (seen: bookworm-security's armhf
# Packages, "File has unexpected size"); apt keeps every other index, and the
# install that follows says so if a package it needs really is missing. So a
# failed update is one line on stderr, not the end of the run.
#
#   scripts/apt-update.sh [APT-GET OPTIONS]      (as root, or through sudo)
if ! apt-get "$@" update; then
    echo "apt-update: apt-get update reported errors (a mirror mid-sync?); going on with the indexes it has" >&2
fi
exit 0
