#!/bin/sh
# Generates the TypeScript messages and grpc-web clients from the API
# contract (protos/) with Debian's protoc and the @protobuf-ts/plugin from
# node_modules (run `npm ci` first). Output: src/gen (not committed).
set -eu
cd "$(dirname "$0")"
plugin=./node_modules/.bin/protoc-gen-ts
if [ ! -x "$plugin" ]; then
  echo "gen.sh: $plugin missing; run 'npm ci' in web/ first" >&2
  exit 1
fi
rm -rf src/gen
mkdir -p src/gen
# uint64 ids and seqs become decimal strings (exact, usable as map keys).
protoc \
  --plugin=protoc-gen-ts="$plugin" \
  --ts_out=src/gen \
  --ts_opt=long_type_string,optimize_code_size \
  --proto_path=../protos \
  --proto_path=/usr/include \
  ../protos/im/auth/v1/auth.proto \
  ../protos/im/message/v1/types.proto \
  ../protos/im/message/v1/message.proto \
  ../protos/im/history/v1/history.proto \
  ../protos/im/presence/v1/presence.proto
