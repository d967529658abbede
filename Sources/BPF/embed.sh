#!/bin/sh
# embed.sh CLANG SOURCE INCLUDE OUTPUT.swift NAME: compiles SOURCE for the bpf target (with
# BTF, which libbpf needs for the map definitions) and writes it as a Swift base64 string.
set -eu
clang=$1 source=$2 include=$3 output=$4 name=$5
object=$output.o
"$clang" -target bpf -O2 -g -Wall -Werror -I "$include" -I /usr/include/$(uname -m)-linux-gnu \
    -c "$source" -o "$object"
{
    echo "// Generated from $(basename "$source") by Sources/BPF/embed.sh: do not edit."
    printf 'let %s = "' "$name"
    base64 -w0 "$object"
    echo '"'
} > "$output.tmp"
mv "$output.tmp" "$output"
