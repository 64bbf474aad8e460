#!/usr/bin/env bash
# Development certificates for TLS and mTLS between the services.
#
#   scripts/gen-dev-certs.sh DIR [--days N] [--name EXTRA_SAN]...
#
# Writes into DIR (created if needed):
#   ca.crt, ca.key          a private development CA (never trust it beyond
#                           this machine)
#   server.crt, server.key  for listeners (--tls_cert/--tls_key); SANs
#                           localhost, 127.0.0.1, ::1 and each --name
#   client.crt, client.key  for calls between services over mTLS
#                           (--peer_tls_cert/--peer_tls_key)
# Use ca.crt for --tls_client_ca (listeners requiring mTLS) and
# --peer_tls_ca (clients). Keys are ECDSA P-256, private files mode 0600.
# Existing files in DIR are replaced.
set -euo pipefail

PROG="$(basename "$0")"
readonly PROG

die() {
  echo "$PROG: $*" >&2
  exit 1
}

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
DIR="$1"
shift
DAYS=365
EXTRA_SANS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --days) DAYS="${2:?--days needs a value}"; shift 2 ;;
    --name) EXTRA_SANS+=("${2:?--name needs a value}"); shift 2 ;;
    -h|--help) usage ;;
    *) die "unknown argument: $1" ;;
  esac
done
[[ "$DAYS" =~ ^[0-9]+$ ]] || die "--days must be a number"
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"

mkdir -p "$DIR"
cd "$DIR"
umask 077

SAN="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in "${EXTRA_SANS[@]+"${EXTRA_SANS[@]}"}"; do
  if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then
    SAN+=",IP:$name"
  else
    SAN+=",DNS:$name"
  fi
done

new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# The CA.
new_key ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$DAYS" \
  -subj "/CN=im dev CA" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.crt

# sign NAME CN EXTENSIONS: NAME.key + NAME.crt signed by the CA.
sign() {
  local name="$1" cn="$2" ext="$3"
  new_key "$name.key"
  openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
  printf '%s\n' "$ext" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key \
    -CAcreateserial -days "$DAYS" -sha256 -extfile "$name.ext" \
    -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

sign server "localhost" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$SAN"

sign client "im-service" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

rm -f ca.srl
chmod 0644 ca.crt server.crt client.crt
chmod 0600 ca.key server.key client.key
echo "$PROG: wrote ca, server and client certificates to $(pwd)"
