#!/usr/bin/env bash
# A throwaway Dovecot IMAP server on 127.0.0.1 for the mail-in tests (Debian's dovecot-imapd, installed when
# missing). Its configuration, mail and state live in one directory; no system daemon is used or left behind.
#   scripts/dovecot.sh install            install dovecot-imapd if /usr/sbin/dovecot is missing
#   scripts/dovecot.sh start DIR PORT [TLS_PORT]
#                                         start a server in DIR (a new empty directory): IMAP with STARTTLS on
#                                         PORT, IMAPS on TLS_PORT; a self-signed certificate for 127.0.0.1 and
#                                         localhost in DIR/cert.pem; one account: user "mesa", password
#                                         "mesa-test-password"
#   scripts/dovecot.sh stop DIR           stop that server (DIR stays; the caller removes it)
#   scripts/dovecot.sh run CMD...         start one in a temp directory, run CMD with MESA_TEST_IMAP_PORT set,
#                                         stop it and remove the directory
set -euo pipefail

DOVECOT=/usr/sbin/dovecot
USER_NAME=mesa
USER_PASSWORD=mesa-test-password

install() {
  [ -x "$DOVECOT" ] && return 0
  SUDO=()
  if [ "$(id -u)" != "0" ]; then
    command -v sudo >/dev/null || { echo "dovecot.sh: $DOVECOT is missing; run as root or install dovecot-imapd" >&2; return 1; }
    SUDO=(sudo)
  fi
  echo "Installing Dovecot (Debian package dovecot-imapd) for the mail-in tests..." >&2
  APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o Dpkg::Use-Pty=0)
  LOG="$(mktemp)"
  run() { "$@" >>"$LOG" 2>&1 || { cat "$LOG" >&2; rm -f "$LOG"; return 1; }; }
  run "${APT[@]}" update || { sleep 5; run "${APT[@]}" update; }
  # The package's own service is not wanted: stop it if the installation started one.
  run "${APT[@]}" install -y --no-install-recommends dovecot-imapd openssl
  rm -f "$LOG"
  if command -v doveadm >/dev/null && [ -f /etc/dovecot/dovecot.conf ]; then
    "${SUDO[@]}" doveadm stop >/dev/null 2>&1 || true
  fi
}

start() {
  local dir="$1" port="$2" tls_port="${3:-0}" mail_user
  mkdir -p "$dir/run" "$dir/state" "$dir/mail"
  chmod 755 "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
  # Mail is stored as an ordinary user: "mail" when run as root (Dovecot refuses uid 0), else the caller.
  if [ "$(id -u)" = "0" ]; then mail_user=mail; else mail_user="$(id -un)"; fi
  local uid gid
  uid="$(id -u "$mail_user")"; gid="$(id -g "$mail_user")"
  chown "$uid:$gid" "$dir/mail"
  echo "$USER_NAME:{PLAIN}$USER_PASSWORD::::" > "$dir/passwd"
  cat > "$dir/dovecot.conf" <<CONF
base_dir = $dir/run
state_dir = $dir/state
instance_name = mesa-test-$port
log_path = $dir/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <$dir/cert.pem
ssl_key = <$dir/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:$dir/mail/%u
mail_uid = $uid
mail_gid = $gid
$( [ "$(id -u)" = "0" ] || echo "default_internal_user = $(id -un)
default_login_user = $(id -un)
default_internal_group = $(id -gn)" )
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/passwd
}
userdb {
  driver = static
  args = home=$dir/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $tls_port
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
CONF
  # Its own output goes to its log, so that no caller waits on a pipe the daemon keeps open.
  "$DOVECOT" -c "$dir/dovecot.conf" </dev/null >>"$dir/dovecot.log" 2>&1
  for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "Dovecot $("$DOVECOT" --version | cut -d' ' -f1) on 127.0.0.1:$port (user $USER_NAME)" >&2
      return 0
    fi
    sleep 0.2
  done
  echo "dovecot.sh: the server did not start; its log:" >&2
  cat "$dir/dovecot.log" >&2 || true
  stop "$dir"
  return 1
}

stop() {
  local dir="$1"
  [ -f "$dir/dovecot.conf" ] || return 0
  doveadm -c "$dir/dovecot.conf" stop >/dev/null 2>&1 || {
    [ -f "$dir/run/master.pid" ] && kill "$(cat "$dir/run/master.pid")" 2>/dev/null || true
  }
}

case "${1:-}" in
  install) install ;;
  start) install; start "$2" "$3" "${4:-0}" ;;
  stop) stop "$2" ;;
  run)
    shift
    install
    DIR="$(mktemp -d /tmp/mesa-dovecot.XXXXXX)"
    PORT="${MESA_TEST_IMAP_PORT:-14393}"
    trap 'stop "$DIR"; rm -rf "$DIR"' EXIT
    start "$DIR" "$PORT"
    export MESA_TEST_IMAP_PORT="$PORT"
    "$@" ;;
  *) echo "usage: $0 install | start DIR PORT [TLS_PORT] | stop DIR | run CMD..." >&2; exit 2 ;;
esac
