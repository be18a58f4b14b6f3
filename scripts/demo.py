#!/usr/bin/env python3
"""
demo - run a throw-away herald in ./demo-run/ (used by `make demo`).

Creates ./demo-run/ afresh: herald.conf (SMTP on 127.0.0.1:2525, POP3 on
2110 with STLS and 2995 with implicit TLS, IMAP on 2143 with STARTTLS and
2993 with implicit TLS, mail submission with SMTP AUTH on 2587 with
STARTTLS and 2465 with implicit TLS, myhostname mx.example.test, a
self-signed certificate for STARTTLS/STLS/pop3s/imaps/submissions), the
domain example.test with users alice and bob (random passwords, printed)
and the alias postmaster -> alice. Then it prints how to send a test mail
and where it will land, and becomes `heraldctl start --foreground`, so
Ctrl-C stops everything.

Started as root it shows the real privilege separation (DESIGN.md
section 3): master stays root and every service runs as its own user.
The package's users (herald, vmail, herald-auth, herald-dkim, group
herald-dir) are used when they exist; else system users herald-demo,
herald-demo-mail, herald-demo-auth, herald-demo-dkim and the group
herald-demo-dir are made for the demo
(useradd --system: no shell, no home) and the output says so and how to
remove them. The demo folder must then be reachable by those users: if
a folder above ./ is closed to others, the demo runs in a new folder
under /tmp instead. Not started as root, everything runs as the
invoking user.

Programs come from $HERALD_BIN (default: build/bin of this repository).
prepare() does everything but the foreground run, for tests.
"""
import grp
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(os.environ.get("HERALD_BIN") or
                      os.path.join(REPO, "build", "bin"))
RUN = os.path.abspath("demo-run")
PORT = int(os.environ.get("HERALD_DEMO_PORT", "2525"))
POP3_PORT = int(os.environ.get("HERALD_DEMO_POP3_PORT", "2110"))
POP3S_PORT = int(os.environ.get("HERALD_DEMO_POP3S_PORT", "2995"))
IMAP_PORT = int(os.environ.get("HERALD_DEMO_IMAP_PORT", "2143"))
IMAPS_PORT = int(os.environ.get("HERALD_DEMO_IMAPS_PORT", "2993"))
SUBMISSION_PORT = int(os.environ.get("HERALD_DEMO_SUBMISSION_PORT", "2587"))
SUBMISSIONS_PORT = int(os.environ.get("HERALD_DEMO_SUBMISSIONS_PORT",
                                      "2465"))

# setting -> account: the package's (etc/debian/postinst), else the demo's
PACKAGE_ACCOUNTS = {"herald_user": "herald", "vmail_user": "vmail",
                    "auth_user": "herald-auth", "dkim_user": "herald-dkim"}
PACKAGE_GROUP = "herald-dir"
DEMO_ACCOUNTS = {"herald_user": "herald-demo",
                 "vmail_user": "herald-demo-mail",
                 "auth_user": "herald-demo-auth",
                 "dkim_user": "herald-demo-dkim"}
DEMO_GROUP = "herald-demo-dir"
NOLOGIN = "/usr/sbin/nologin"


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


def still_running(run_dir):
    """pid of a master still using run_dir, or None."""
    try:
        with open(os.path.join(run_dir, "run", "master.pid")) as f:
            pid = int(f.read().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def shorter(path):
    """path relative to here if that is shorter and stays below here."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def root_accounts(notes):
    """As root: the settings herald_user, vmail_user, auth_user,
    dkim_user, directory_group and dkim_group (dkim_user's own group).
    The package's accounts if they all exist, else the demo's, made here
    if missing (as postinst makes the package's: system users with a
    group of their own, no shell, no home)."""
    if all(user_exists(u) for u in PACKAGE_ACCOUNTS.values()) and \
            group_exists(PACKAGE_GROUP):
        notes.append("the services run as the package's users")
        return dict(PACKAGE_ACCOUNTS, directory_group=PACKAGE_GROUP,
                    dkim_group=PACKAGE_ACCOUNTS["dkim_user"])
    made = []
    for name in DEMO_ACCOUNTS.values():
        if not user_exists(name):
            run(["useradd", "--system", "--user-group", "--no-create-home",
                 "--home-dir", "/nonexistent", "--shell", NOLOGIN,
                 "--comment", "herald demo", name])
            made.append(name)
    if not group_exists(DEMO_GROUP):
        run(["groupadd", "--system", DEMO_GROUP])
        made.append(DEMO_GROUP)
    if made:
        notes.append("made for the demo (the herald package's users do "
                     "not exist here): system users and groups %s; remove "
                     "them with: %s" % (
                         ", ".join(made),
                         "; ".join(["userdel " + u for u in
                                    DEMO_ACCOUNTS.values()] +
                                   ["groupdel " + DEMO_GROUP])))
    else:
        notes.append("the services run as the demo's users, made by an "
                     "earlier demo")
    return dict(DEMO_ACCOUNTS, directory_group=DEMO_GROUP,
                dkim_group=DEMO_ACCOUNTS["dkim_user"])


def accounts(notes):
    """The account settings: real users as root, else the caller."""
    if os.geteuid() == 0:
        return root_accounts(notes)
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    return {"herald_user": user, "vmail_user": user, "auth_user": user,
            "dkim_user": user, "directory_group": group,
            "dkim_group": group}


def reachable(path):
    """Can any user reach path (every folder above it open to others)?"""
    path = os.path.dirname(os.path.abspath(path))
    while True:
        try:
            if not os.stat(path).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


def prepare(run_dir, bin_dir=BIN, port=PORT, pop3_port=POP3_PORT,
            pop3s_port=POP3S_PORT, imap_port=IMAP_PORT,
            imaps_port=IMAPS_PORT, submission_port=SUBMISSION_PORT,
            submissions_port=SUBMISSIONS_PORT):
    """Make run_dir afresh with a configuration, a certificate and the
    directory. Returns a dict: conf, ctl (heraldctl argv prefix),
    passwords {name: password}, accounts (the settings), notes (lines
    to print), ports {port, pop3, pop3s, imap, imaps, submission,
    submissions}."""
    heraldctl = os.path.join(bin_dir, "heraldctl")
    notes = []
    acct = accounts(notes)
    if os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    os.makedirs(run_dir)
    # as root the services cross it as their users; master makes the rest
    os.chmod(run_dir, 0o755)

    cert = os.path.join(run_dir, "tls.crt")
    key = os.path.join(run_dir, "tls.key")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-sha256", "-days", "30", "-keyout", key, "-out", cert,
         "-subj", "/CN=mx.example.test",
         "-addext", "subjectAltName=DNS:mx.example.test,IP:127.0.0.1"])
    os.chmod(key, 0o600)	# read by the services before they drop root
    os.chmod(cert, 0o644)

    conf = os.path.join(run_dir, "herald.conf")
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
                "submission_listen = 127.0.0.1:%d\n"
                "submissions_listen = 127.0.0.1:%d\n"
                "pop3d_listen = 127.0.0.1:%d\n"
                "pop3s_listen = 127.0.0.1:%d\n"
                "pop3d_workers = 1\n"
                "imap_listen = 127.0.0.1:%d\n"
                "imaps_listen = 127.0.0.1:%d\n"
                "imapd_workers = 1\n"
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
                "dkim_user = %s\n"
                "dkim_group = %s\n"
                "dkim_directory = dkim\n"
                % (bin_dir, port, submission_port, submissions_port,
                   pop3_port, pop3s_port, imap_port,
                   imaps_port,
                   acct["herald_user"], acct["vmail_user"],
                   acct["auth_user"], acct["directory_group"],
                   acct["dkim_user"], acct["dkim_group"]))
    # sendmail, run by any local user, reads it to find the socket
    os.chmod(conf, 0o644)

    ctl = [heraldctl, "-c", conf]
    run(ctl + ["domain", "add", "example.test"])
    passwords = {}
    for name in ("alice", "bob"):
        # the banner's commands take it as an argument: one that began
        # with '-' would be read as an option (swaks: "Unknown option")
        pw = secrets.token_urlsafe(12)
        while pw.startswith("-"):
            pw = secrets.token_urlsafe(12)
        passwords[name] = pw
        run(ctl + ["user", "add", name + "@example.test"],
            input=passwords[name] + "\n")
    run(ctl + ["alias", "add", "postmaster@example.test",
               "alice@example.test"])
    # example.test's DKIM keys (Ed25519 and RSA): the signer signs the
    # mail alice and bob send with them; "heraldctl dkim show
    # example.test" prints their records
    run(ctl + ["dkim", "keygen", "example.test", "--selector", "demo"])
    return {"conf": conf, "ctl": ctl, "passwords": passwords,
            "accounts": acct, "notes": notes,
            "ports": {"port": port, "pop3": pop3_port, "pop3s": pop3s_port,
                      "imap": imap_port, "imaps": imaps_port,
                      "submission": submission_port,
                      "submissions": submissions_port}}


def identity_text(acct):
    """Who runs what, for the banner."""
    if os.geteuid() != 0:
        return "everything as %s (start as root for the real users)" \
            % acct["herald_user"]
    return ("master as root; smtpd, qmgr as %s; local, pop3d, imapd as "
            "%s;\n            authd as %s (directory group %s); signer "
            "as %s"
            % (acct["herald_user"], acct["vmail_user"], acct["auth_user"],
               acct["directory_group"], acct["dkim_user"]))


def banner(run_dir, made, notes, heraldctl):
    """What the demo prints before herald's logs: the users, the ports,
    and commands to try."""
    rel = shorter(run_dir)
    passwords = made["passwords"]
    return """
herald demo in %(run)s

  users:    alice@example.test  password %(pa)s
            bob@example.test    password %(pb)s
  alias:    postmaster@example.test -> alice@example.test
  SMTP:     127.0.0.1:%(port)d (STARTTLS with a self-signed certificate)
  submit:   127.0.0.1:%(submission)d (STARTTLS, then AUTH), 127.0.0.1:%(submissions)d (implicit TLS)
  POP3:     127.0.0.1:%(pop3)d (STLS), 127.0.0.1:%(pop3s)d (implicit TLS)
  IMAP:     127.0.0.1:%(imap)d (STARTTLS), 127.0.0.1:%(imaps)d (implicit TLS)
  runs:     %(who)s
%(notes)s
Send alice a mail (in another terminal):

  swaks --server 127.0.0.1:%(port)d --to alice@example.test --from someone@example.org
  swaks --server 127.0.0.1:%(port)d --to postmaster@example.test --from someone@example.org -tls

As alice, from a mail client: log in on the submission port, then send
anywhere (mail to other domains waits in the queue):

  swaks --server 127.0.0.1:%(submission)d -tls --auth PLAIN --auth-user alice@example.test --auth-password %(pa)s --from alice@example.test --to bob@example.test

or from a local program, through sendmail:

  printf 'Subject: hello\\n\\nfrom sendmail\\n' | %(sendmail)s -C %(rel)s/herald.conf alice@example.test

It lands in alice's Maildir:

  ls %(rel)s/mail/example.test/alice/new/

Read it over POP3 (the certificate is self-signed, hence -k):

  curl -k -u alice@example.test:%(pa)s pop3s://127.0.0.1:%(pop3s)d/
  curl -k -u alice@example.test:%(pa)s pop3s://127.0.0.1:%(pop3s)d/1
  openssl s_client -quiet -connect 127.0.0.1:%(pop3)d -starttls pop3

or over IMAP: list alice's INBOX (flags and envelope of each message),
then read the first message:

  curl -k -u alice@example.test:%(pa)s imaps://127.0.0.1:%(imaps)d/INBOX -X 'FETCH 1:* (FLAGS ENVELOPE)'
  curl -k -u alice@example.test:%(pa)s 'imaps://127.0.0.1:%(imaps)d/INBOX/;MAILINDEX=1'
  openssl s_client -quiet -connect 127.0.0.1:%(imap)d -starttls imap

Look around:

  %(ctl)s -c %(rel)s/herald.conf status
  %(ctl)s -c %(rel)s/herald.conf queue list
  %(ctl)s -c %(rel)s/herald.conf user list

Logs follow below. Ctrl-C stops herald.
""" % dict(made["ports"], run=run_dir, rel=rel, pa=passwords["alice"],
       pb=passwords["bob"], who=identity_text(made["accounts"]),
       notes="".join("  note:     %s\n" % n for n in notes),
       ctl=shorter(heraldctl),
       sendmail=shorter(os.path.join(os.path.dirname(heraldctl),
                                     "sendmail")))


def main():
    heraldctl = os.path.join(BIN, "heraldctl")
    for prog in ("heraldctl", "master", "smtpd", "qmgr", "local", "authd",
                 "pop3d", "imapd"):
        if not os.access(os.path.join(BIN, prog), os.X_OK):
            die("%s/%s not found: build first (make) or set HERALD_BIN"
                % (BIN, prog))
    if shutil.which("openssl") is None:
        die("the openssl command is needed for the demo certificate")
    run_dir = RUN
    moved = None
    if os.geteuid() == 0 and not reachable(run_dir):
        # the services' users could not get into ./demo-run
        run_dir = tempfile.mkdtemp(prefix="herald-demo-", dir="/tmp")
        moved = "a folder above %s is closed to other users, so the " \
                "demo runs in %s" % (os.getcwd(), run_dir)
    pid = still_running(run_dir)
    if pid:
        die("a demo is still running (master pid %d); stop it with "
            "%s -c %s/herald.conf stop" % (pid, heraldctl, run_dir))
    made = prepare(run_dir)
    notes = made["notes"] + ([moved] if moved else [])

    print(banner(run_dir, made, notes, heraldctl))
    sys.stdout.flush()
    # master turns SIGINT into a clean stop; make sure it is not ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execv(heraldctl, made["ctl"] + ["start", "--foreground"])


if __name__ == "__main__":
    main()
