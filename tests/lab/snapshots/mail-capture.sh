#!/bin/sh
# Stands in for mail(1) as ZED_EMAIL_PROG: keeps the arguments ZED passes (-s SUBJECT ADDRESS) and
# the body it writes to stdin, one file per mail.
set -eu
dir=/var/tmp/snapproof/mail
mkdir -p "$dir"
out="$dir/$(date -u +%s%N).txt"
{
    printf 'ARGV:'
    printf ' [%s]' "$@"
    printf '\n'
    cat
} >"$out.tmp"
mv "$out.tmp" "$out"
