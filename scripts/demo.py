#!/usr/bin/env python3
"""
demo - run a throw-away herald in ./demo-run/ (used by `make demo`).

Creates ./demo-run/ afresh: herald.conf (SMTP on 127.0.0.1:2525, POP3 on
2110 with STLS and 2995 with implicit TLS, myhostname mx.example.test, a
self-signed certificate for STARTTLS/STLS/pop3s), the
domain example.test with users alice and bob (random passwords, printed)
and the alias postmaster -> alice. Then it prints how to send a test mail
and where it will land, and becomes `heraldctl start --foreground`, so
Ctrl-C stops everything.

Programs come from $HERALD_BIN (default: build/bin of this repository).
"""
import grp
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(os.environ.get("HERALD_BIN") or
                      os.path.join(REPO, "build", "bin"))
RUN = os.path.abspath("demo-run")
PORT = int(os.environ.get("HERALD_DEMO_PORT", "2525"))
POP3_PORT = int(os.environ.get("HERALD_DEMO_POP3_PORT", "2110"))
POP3S_PORT = int(os.environ.get("HERALD_DEMO_POP3S_PORT", "2995"))


def die(text):
    print("demo: " + text, file=sys.stderr)
    sys.exit(1)


def run(argv, input=None):
    r = subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        die("%s failed (exit %d):\n%s" % (" ".join(argv), r.returncode,
                                           r.stdout))
    return r.stdout


def still_running():
    """pid of a master still using demo-run, or None."""
    try:
        with open(os.path.join(RUN, "run", "master.pid")) as f:
            pid = int(f.read().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def shorter(path):
    """path relative to here if that is shorter and stays below here."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def identity():
    if os.geteuid() == 0:
        return "root", "root"
    return (pwd.getpwuid(os.geteuid()).pw_name,
            grp.getgrgid(os.getegid()).gr_name)


def main():
    heraldctl = os.path.join(BIN, "heraldctl")
    for prog in ("heraldctl", "master", "smtpd", "qmgr", "local", "authd",
                 "pop3d"):
        if not os.access(os.path.join(BIN, prog), os.X_OK):
            die("%s/%s not found: build first (make) or set HERALD_BIN"
                % (BIN, prog))
    if shutil.which("openssl") is None:
        die("the openssl command is needed for the demo certificate")
    pid = still_running()
    if pid:
        die("a demo is still running (master pid %d); stop it with "
            "%s -c %s/herald.conf stop" % (pid, heraldctl, RUN))
    if os.path.exists(RUN):
        shutil.rmtree(RUN)
    os.makedirs(RUN)

    cert = os.path.join(RUN, "tls.crt")
    key = os.path.join(RUN, "tls.key")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-sha256", "-days", "30", "-keyout", key, "-out", cert,
         "-subj", "/CN=mx.example.test",
         "-addext", "subjectAltName=DNS:mx.example.test,IP:127.0.0.1"])
    os.chmod(key, 0o600)

    user, group = identity()
    conf = os.path.join(RUN, "herald.conf")
    with open(conf, "w") as f:
        f.write("# herald demo instance (scripts/demo.py); paths are "
                "relative to this file\n"
                "myhostname = mx.example.test\n"
                "mydomain = example.test\n"
                "spool_directory = spool\n"
                "data_directory = data\n"
                "run_directory = run\n"
                "mail_location = mail/%%d/%%n\n"
                "daemon_directory = %s\n"
                "smtpd_listen = 127.0.0.1:%d\n"
                "pop3d_listen = 127.0.0.1:%d\n"
                "pop3s_listen = 127.0.0.1:%d\n"
                "pop3d_workers = 1\n"
                "tls_cert_file = tls.crt\n"
                "tls_key_file = tls.key\n"
                "smtpd_workers = 2\n"
                "local_processes = 2\n"
                "queue_scan_interval = 10s\n"
                "minimal_backoff_time = 30s\n"
                "maximal_backoff_time = 5m\n"
                "stop_timeout = 5s\n"
                "herald_user = %s\n"
                "vmail_user = %s\n"
                "auth_user = %s\n"
                "directory_group = %s\n"
                % (BIN, PORT, POP3_PORT, POP3S_PORT, user, user, user,
                   group))

    ctl = [heraldctl, "-c", conf]
    run(ctl + ["domain", "add", "example.test"])
    passwords = {}
    for name in ("alice", "bob"):
        passwords[name] = secrets.token_urlsafe(12)
        run(ctl + ["user", "add", name + "@example.test"],
            input=passwords[name] + "\n")
    run(ctl + ["alias", "add", "postmaster@example.test",
               "alice@example.test"])

    rel = shorter(RUN)
    print("""
herald demo in %(run)s

  users:    alice@example.test  password %(pa)s
            bob@example.test    password %(pb)s
  alias:    postmaster@example.test -> alice@example.test
  SMTP:     127.0.0.1:%(port)d (STARTTLS with a self-signed certificate)
  POP3:     127.0.0.1:%(pop3)d (STLS), 127.0.0.1:%(pop3s)d (implicit TLS)

Send alice a mail (in another terminal):

  swaks --server 127.0.0.1:%(port)d --to alice@example.test --from someone@example.org
  swaks --server 127.0.0.1:%(port)d --to postmaster@example.test --from someone@example.org -tls

or from a local program, through sendmail:

  printf 'Subject: hello\\n\\nfrom sendmail\\n' | %(sendmail)s -C %(rel)s/herald.conf alice@example.test

It lands in alice's Maildir:

  ls %(rel)s/mail/example.test/alice/new/

Read it over POP3 (the certificate is self-signed, hence -k):

  curl -k -u alice@example.test:%(pa)s pop3s://127.0.0.1:%(pop3s)d/
  curl -k -u alice@example.test:%(pa)s pop3s://127.0.0.1:%(pop3s)d/1
  openssl s_client -quiet -connect 127.0.0.1:%(pop3)d -starttls pop3

Look around:

  %(ctl)s -c %(rel)s/herald.conf status
  %(ctl)s -c %(rel)s/herald.conf queue list
  %(ctl)s -c %(rel)s/herald.conf user list

Logs follow below. Ctrl-C stops herald.
""" % {"run": RUN, "rel": rel, "pa": passwords["alice"],
       "pb": passwords["bob"], "port": PORT, "pop3": POP3_PORT,
       "pop3s": POP3S_PORT,
       "ctl": shorter(heraldctl),
       "sendmail": shorter(os.path.join(os.path.dirname(heraldctl),
                                        "sendmail"))})
    sys.stdout.flush()
    # master turns SIGINT into a clean stop; make sure it is not ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execv(heraldctl, ctl + ["start", "--foreground"])


if __name__ == "__main__":
    main()
