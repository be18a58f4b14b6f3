"""
imapd's mailbox-management commands against a real instance, spoken by
a raw line client (exact responses) and by Python's imaplib.

The first login (special-use folders created and subscribed, once),
LIST (the delimiter, reference + pattern with "%" and "*", INBOX in any
case, superiors that are no folder, LIST-EXTENDED selection and return
options, LIST-STATUS, several patterns, bad options), LSUB, the names in
modified UTF-7 and in UTF-8 after ENABLE IMAP4rev2 / UTF8=ACCEPT,
CREATE (trailing delimiter, superiors, USE), DELETE (INBOX, children),
RENAME (children, INBOX with mail), SUBSCRIBE, STATUS after delivery
over SMTP, the QUOTA commands with a quota set by heraldctl, a hostile
pattern, and the privilege boundary: no name reaches outside the user's
Maildir and a folder linked into it (to another user's mail) is never
followed.
"""
import imaplib
import os
import re
import time

import pytest

import herald as H
from test_imap_core import RawIMAP

ALL_SPECIAL = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash",
               "Junk": "\\Junk", "Archive": "\\Archive"}


@pytest.fixture(scope="module")
def imap(tmp_path_factory, pki):
    from conftest import standard_instance
    with standard_instance(tmp_path_factory, pki, "imapmbox",
                           imap=True) as inst:
        yield inst


def new_user(inst, token):
    """A fresh user for one test (the module instance is shared)."""
    local = "i" + re.sub(r"[^a-z0-9]", "", token.lower())[-24:]
    addr = "%s@example.test" % local
    inst.add_user(addr, "pw-" + local)
    return addr, "pw-" + local, local


class Client(RawIMAP):
    def __init__(self, inst, user, pw):
        super().__init__(inst.imap_port)
        self.login(user, pw)
        self.n = 0

    def do(self, text):
        """(untagged lines, tagged line) of one command."""
        self.n += 1
        tag = "t%d" % self.n
        r = self.cmd(tag, text)
        return r[:-1], r[-1][len(tag) + 1:]

    def do_long(self, text, limit=20000):
        """do() for answers of more than 1,000 lines (bounded)"""
        self.n += 1
        tag = ("t%d " % self.n).encode()
        self.send(tag + text.encode() + b"\r\n")
        lines = []
        for _ in range(limit):
            ln = self.line()
            if ln.startswith(tag) or ln == b"":
                return lines, ln[len(tag):]
            lines.append(ln)
        raise AssertionError("no tagged answer in %d lines" % limit)

    def ok(self, text):
        lines, done = self.do(text)
        assert done.startswith(b"OK "), (text, lines, done)
        return lines

    def listing(self, text):
        """{name: attributes} of a LIST/LSUB answer (quoted names)."""
        out = {}
        for ln in self.ok(text):
            m = re.match(rb'\* (?:LIST|LSUB) \(([^)]*)\) "\." "(.*)"', ln)
            if m:
                out[m.group(2).decode()] = set(m.group(1).decode().split())
        return out


def session(inst, user, pw):
    return Client(inst, user, pw)


def deliver(inst, addr, token, count=1):
    with inst.smtp() as s:
        for i in range(count):
            msg = H.make_message("%s-%d" % (token, i), to=addr)
            s.sendmail("sender@example.org", [addr], msg)
    inst.wait_messages(token, addr.split("@")[0], count=count)


def test_first_login_creates_special_folders(imap, token):
    addr, pw, local = new_user(imap, token)
    md = imap.maildir(local)
    assert not md.exists()
    with session(imap, addr, pw) as c:
        ls = c.listing('LIST "" "*"')
        assert set(ls) == {"INBOX"} | set(ALL_SPECIAL), ls
        assert ls["INBOX"] == {"\\HasNoChildren"}
        for name, attr in ALL_SPECIAL.items():
            assert ls[name] == {"\\HasNoChildren", attr}, (name, ls)
            assert (md / ("." + name) / "cur").is_dir()
        # subscribed with INBOX: clients that show only those see them
        sub = c.listing('LSUB "" "*"')
        assert set(sub) == {"INBOX"} | set(ALL_SPECIAL), sub
        ext = c.listing('LIST (SPECIAL-USE) "" "*"')
        assert set(ext) == set(ALL_SPECIAL)
        assert c.ok("DELETE Trash") == []
    # only the first login creates them: a deleted one stays deleted
    with session(imap, addr, pw) as c:
        assert "Trash" not in c.listing('LIST "" "*"')
    # imaplib agrees
    m = imaplib.IMAP4("127.0.0.1", imap.imap_port)
    try:
        m.login(addr, pw)
        typ, data = m.list()
        assert typ == "OK"
        assert any(b'\\Sent' in d and d.endswith(b'"Sent"') for d in data)
    finally:
        m.logout()


def test_list_patterns_and_reference(imap, token):
    addr, pw, _ = new_user(imap, token)
    with session(imap, addr, pw) as c:
        # LIST "" "" returns the delimiter and the root
        assert c.ok('LIST "" ""') == [b'* LIST (\\Noselect) "." ""']
        assert c.ok('LIST "Work.2024" ""') == \
            [b'* LIST (\\Noselect) "." "Work."']
        for name in ("Work.2024.Q1", "Work.2023", "Home", "Homework"):
            c.ok('CREATE "%s"' % name)
        ls = c.listing('LIST "" "*"')
        assert {"Work", "Work.2024", "Work.2024.Q1", "Work.2023", "Home",
                "Homework"} <= set(ls)
        assert ls["Work"] == {"\\HasChildren"}
        assert ls["Work.2024.Q1"] == {"\\HasNoChildren"}
        # "%" stays on one level
        assert set(c.listing('LIST "" "%"')) == \
            {"INBOX", "Work", "Home", "Homework"} | set(ALL_SPECIAL)
        assert set(c.listing('LIST "" "Work.%"')) == \
            {"Work.2024", "Work.2023"}
        assert set(c.listing('LIST "Work." "%"')) == \
            {"Work.2024", "Work.2023"}
        assert set(c.listing('LIST "" "Work.*"')) == \
            {"Work.2024", "Work.2023", "Work.2024.Q1"}
        assert set(c.listing('LIST "" "Hom%"')) == {"Home", "Homework"}
        assert set(c.listing('LIST "" "*4*"')) == \
            {"Work.2024", "Work.2024.Q1"}
        assert set(c.listing('LIST "" "%.%.Q%"')) == {"Work.2024.Q1"}
        assert c.listing('LIST "" "work"') == {}	# case matters...
        assert set(c.listing('LIST "" "inbox"')) == {"INBOX"}	# ...but
        assert c.listing('LIST "InBoX" ""') == {"": {"\\Noselect"}}
        # a superior that is no folder: \Noselect (rev1), \NonExistent
        # with the extended syntax or in IMAP4rev2
        c.ok('CREATE "Only.Child"')
        c.ok('DELETE "Only"')
        ls = c.listing('LIST "" "Only%"')
        assert ls == {"Only": {"\\Noselect", "\\HasChildren"}}, ls
        ls = c.listing('LIST () "" "Only*"')
        assert ls == {"Only": {"\\NonExistent", "\\HasChildren"},
                      "Only.Child": {"\\HasNoChildren"}}, ls
        # several patterns (RFC 5258)
        assert set(c.listing('LIST "" ("Home" "Work.2023")')) == \
            {"Home", "Work.2023"}


def test_list_extended_and_status(imap, token):
    addr, pw, _ = new_user(imap, token)
    deliver(imap, addr, token, count=2)
    with session(imap, addr, pw) as c:
        c.ok("CREATE Lists.herald")
        c.ok("CREATE Lists.other")
        c.ok("SUBSCRIBE Lists.herald")
        c.ok('SUBSCRIBE "Gone.Away"')
        ls = c.listing('LIST (SUBSCRIBED) "" "*"')
        assert ls["Lists.herald"] == {"\\Subscribed", "\\HasNoChildren"}
        assert ls["Gone.Away"] == {"\\Subscribed", "\\NonExistent"}
        assert "Lists.other" not in ls and "Lists" not in ls
        # RECURSIVEMATCH: a parent listed for its subscribed child
        lines = c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
        assert b'* LIST (\\HasChildren) "." "Lists" ("CHILDINFO" ' \
            b'("SUBSCRIBED"))' in lines, lines
        # RETURN (SUBSCRIBED CHILDREN)
        ls = c.listing('LIST "" "Lists*" RETURN (SUBSCRIBED CHILDREN)')
        assert ls == {"Lists": {"\\HasChildren"},
                      "Lists.herald": {"\\HasNoChildren", "\\Subscribed"},
                      "Lists.other": {"\\HasNoChildren"}}, ls
        # LIST-STATUS: a STATUS after each selectable mailbox
        lines = c.ok('LIST "" "INBOX" RETURN (STATUS (MESSAGES UNSEEN '
                     'SIZE))')
        assert lines[0] == b'* LIST (\\HasNoChildren) "." "INBOX"'
        m = re.match(rb'\* STATUS "INBOX" \(MESSAGES 2 UNSEEN 2 SIZE '
                     rb'(\d+)\)$', lines[1])
        assert m and int(m.group(1)) > 100, lines
        lines = c.ok('LIST () "" "Gone*" RETURN (STATUS (MESSAGES))')
        assert not any(ln.startswith(b"* STATUS") for ln in lines)
        # LSUB (IMAP4rev1): the parent of a subscribed name for "%"
        assert c.listing('LSUB "" "Gone%"') == {"Gone": {"\\Noselect"}}
        c.ok('UNSUBSCRIBE "Gone.Away"')
        assert "Gone.Away" not in c.listing('LSUB "" "*"')
        # bad options are BAD
        for bad in ('LIST (RECURSIVEMATCH) "" "*"', 'LIST (FOO) "" "*"',
                    'LIST "" "*" RETURN (FOO)', 'LIST "" "*" RETURN',
                    'LIST "" ()', 'LIST ""', 'LSUB (SUBSCRIBED) "" "*"'):
            assert c.do(bad)[1].startswith(b"BAD "), bad


def test_mutf7_names_and_utf8(imap, token):
    addr, pw, local = new_user(imap, token)
    with session(imap, addr, pw) as c:
        c.ok('CREATE "Entw&APw-rfe"')
        assert "Entw&APw-rfe" in c.listing('LIST "" "*"')
        assert (imap.maildir(local) / ".Entw&APw-rfe" / "cur").is_dir()
        # not canonical / broken modified UTF-7 is refused
        for bad in ('"&Jjo"', '"&AGE-"', '"a&"'):
            _, done = c.do("CREATE " + bad)
            assert done.startswith(b"NO [CANNOT] "), (bad, done)
        assert c.do('STATUS "&Jjo" (MESSAGES)')[1].startswith(b"NO [")
    for enable in ("IMAP4rev2", "UTF8=ACCEPT"):
        with session(imap, addr, pw) as c:
            assert c.ok("ENABLE " + enable) == [b"* ENABLED " +
                                                enable.encode()]
            ls = c.listing('LIST "" "*"')
            assert "Entwürfe" in ls and "Entw&APw-rfe" not in ls, ls
            lines = c.ok('STATUS "Entwürfe" (MESSAGES)')
            assert lines == ['* STATUS "Entwürfe" (MESSAGES 0)'.encode()]
            if enable == "IMAP4rev2":
                c.ok('CREATE "Überweisung"')
    with session(imap, addr, pw) as c:
        assert "&ANw-berweisung" in c.listing('LIST "" "*"')
        # a rev1 client's "&" is the mUTF-7 escape: "&-" is "&"
        c.ok('CREATE "R&-D"')
    with session(imap, addr, pw) as c:
        c.ok("ENABLE IMAP4rev2")
        assert "R&D" in c.listing('LIST "" "R*"')


def test_create_edge_cases(imap, token):
    addr, pw, local = new_user(imap, token)
    md = imap.maildir(local)
    with session(imap, addr, pw) as c:
        # a trailing delimiter declares the intent to create below it
        c.ok('CREATE "Projects."')
        assert (md / ".Projects").is_dir()
        # superiors are created
        c.ok('CREATE "A.B.C"')
        ls = c.listing('LIST "" ("A" "A.*")')
        assert ls == {"A": {"\\HasChildren"}, "A.B": {"\\HasChildren"},
                      "A.B.C": {"\\HasNoChildren"}}, ls
        assert c.do("CREATE Projects")[1].startswith(b"NO [ALREADYEXISTS]")
        assert c.do("CREATE inbox")[1].startswith(b"NO [ALREADYEXISTS]")
        assert c.do("CREATE INBOX")[1].startswith(b"NO [ALREADYEXISTS]")
        # CREATE-SPECIAL-USE: the use goes with the name
        c.ok("DELETE Sent")
        _, done = c.do("CREATE Outbox (USE (\\Sent))")
        assert done.startswith(b"NO [USEATTR]"), done
        assert not (md / ".Outbox").exists()
        c.ok("CREATE Sent (USE (\\Sent))")
        assert c.listing('LIST "" "Sent"') == {
            "Sent": {"\\HasNoChildren", "\\Sent"}}
        assert c.do("CREATE X (USE ())")[1].startswith(b"BAD ")
        assert c.do("CREATE")[1].startswith(b"BAD ")


def test_delete_and_children(imap, token):
    addr, pw, local = new_user(imap, token)
    md = imap.maildir(local)
    with session(imap, addr, pw) as c:
        assert c.do("DELETE INBOX")[1].startswith(b"NO [CANNOT]")
        assert c.do("DELETE inbox")[1].startswith(b"NO [CANNOT]")
        assert c.do("DELETE Nope")[1].startswith(b"NO [NONEXISTENT]")
        c.ok("CREATE Parent.Kid")
        c.ok("DELETE Parent")
        assert not (md / ".Parent").exists()
        assert (md / ".Parent.Kid" / "cur").is_dir()
        ls = c.listing('LIST "" "Parent*"')
        assert ls == {"Parent": {"\\Noselect", "\\HasChildren"},
                      "Parent.Kid": {"\\HasNoChildren"}}, ls
        # the name is no mailbox now
        assert c.do("DELETE Parent")[1].startswith(b"NO [NONEXISTENT]")
        assert c.do("STATUS Parent (MESSAGES)")[1].startswith(
            b"NO [NONEXISTENT]")
        c.ok("DELETE Parent.Kid")
        assert c.listing('LIST "" "Parent*"') == {}


def test_rename_folders_and_inbox(imap, token):
    addr, pw, local = new_user(imap, token)
    md = imap.maildir(local)
    deliver(imap, addr, token, count=3)
    with session(imap, addr, pw) as c:
        c.ok("CREATE Old.Sub")
        c.ok("RENAME Old New")
        ls = c.listing('LIST "" "*"')
        assert "New" in ls and "New.Sub" in ls and "Old" not in ls
        assert c.do("RENAME Old X")[1].startswith(b"NO [NONEXISTENT]")
        assert c.do("RENAME New Sent")[1].startswith(b"NO [ALREADYEXISTS]")
        assert c.do("RENAME New INBOX")[1].startswith(b"NO [ALREADYEXISTS]")
        assert c.do("RENAME New New.Sub.X")[1].startswith(b"NO [CANNOT]")
        # RENAME INBOX: the messages move, INBOX stays (empty)
        st = c.ok("STATUS INBOX (MESSAGES UIDNEXT)")
        assert st[0].startswith(b'* STATUS "INBOX" (MESSAGES 3 ')
        c.ok("RENAME INBOX Saved")
        assert c.ok("STATUS INBOX (MESSAGES)") == \
            [b'* STATUS "INBOX" (MESSAGES 0)']
        assert c.ok("STATUS Saved (MESSAGES)") == \
            [b'* STATUS "Saved" (MESSAGES 3)']
        files = list((md / ".Saved" / "cur").iterdir()) + \
            list((md / ".Saved" / "new").iterdir())
        assert len(files) == 3
        assert "INBOX" in c.listing('LIST "" "*"')


def test_status_after_delivery(imap, token):
    addr, pw, _ = new_user(imap, token)
    with session(imap, addr, pw) as c:
        lines = c.ok("STATUS INBOX (MESSAGES UIDNEXT UNSEEN)")
        assert lines == [b'* STATUS "INBOX" (MESSAGES 0 UIDNEXT 1 '
                         b'UNSEEN 0)'], lines
        deliver(imap, addr, token, count=2)
        # RECENT: no SELECT has seen the two yet (RFC 3501 2.3.2)
        lines = c.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN "
                     "DELETED SIZE HIGHESTMODSEQ RECENT APPENDLIMIT "
                     "DELETED-STORAGE)")
        m = re.match(rb'\* STATUS "INBOX" \(MESSAGES 2 UIDNEXT 3 '
                     rb'UIDVALIDITY (\d+) UNSEEN 2 DELETED 0 SIZE (\d+) '
                     rb'HIGHESTMODSEQ (\d+) RECENT 2 APPENDLIMIT (\d+) '
                     rb'DELETED-STORAGE 0\)$', lines[0])
        assert m, lines
        assert int(m.group(1)) > 0 and int(m.group(2)) > 200
        # the same with imaplib
    m = imaplib.IMAP4("127.0.0.1", imap.imap_port)
    try:
        m.login(addr, pw)
        typ, data = m.status("INBOX", "(MESSAGES UNSEEN)")
        assert typ == "OK" and data == [b'"INBOX" (MESSAGES 2 UNSEEN 2)']
        typ, data = m.status("Nowhere", "(MESSAGES)")
        assert typ == "NO" and data[0].startswith(b"[NONEXISTENT]")
    finally:
        m.logout()
    with session(imap, addr, pw) as c:
        for bad in ("STATUS INBOX (FOO)", "STATUS INBOX ()",
                    "STATUS INBOX MESSAGES", "STATUS (MESSAGES)"):
            assert c.do(bad)[1].startswith(b"BAD "), bad


def test_quota_from_heraldctl(imap, token):
    addr, pw, _ = new_user(imap, token)
    with session(imap, addr, pw) as c:
        # no quota: no quota root
        assert c.ok("GETQUOTAROOT INBOX") == [b'* QUOTAROOT "INBOX"']
        assert c.do('GETQUOTA ""')[1].startswith(b"NO [NONEXISTENT]")
    imap.ctl_ok("user", "quota", addr, "10M")
    deliver(imap, addr, token, count=1)
    with session(imap, addr, pw) as c:
        lines = c.ok("GETQUOTAROOT INBOX")
        assert lines[0] == b'* QUOTAROOT "INBOX" ""'
        m = re.match(rb'\* QUOTA "" \(STORAGE (\d+) 10240\)$', lines[1])
        assert m and 1 <= int(m.group(1)) < 100, lines
        assert c.ok('GETQUOTA ""')[0] == lines[1]
        assert c.do('GETQUOTA "other"')[1].startswith(b"NO [NONEXISTENT]")
        assert c.do('SETQUOTA "" (STORAGE 1)')[1].startswith(b"NO ")
        assert c.do("GETQUOTAROOT Nope")[1].startswith(b"NO [NONEXISTENT]")
    imap.ctl_ok("user", "quota", addr, "0")


def test_hostile_pattern_is_bounded(imap, token):
    addr, pw, _ = new_user(imap, token)
    with session(imap, addr, pw) as c:
        for i in range(30):
            c.ok('CREATE "%s"' % (".".join(["aaaaaaaaaa"] * 3) + str(i)))
        pat = "*%" * 500 + "b"
        t0 = time.monotonic()
        assert c.listing('LIST "" "%s"' % pat) == {}
        assert time.monotonic() - t0 < 5
        lines, done = c.do('LIST "" "%s"' % ("*" * 2000))
        assert done.startswith(b"BAD "), done


def test_names_stay_inside_the_maildir(imap, token):
    addr, pw, local = new_user(imap, token)
    vaddr, vpw, victim = new_user(imap, token + "v")
    deliver(imap, vaddr, token + "v", count=1)
    with session(imap, vaddr, vpw) as c:
        c.ok("CREATE Secret")
    vmd = imap.maildir(victim)
    md = imap.maildir(local)
    with session(imap, addr, pw) as c:
        for name in ("../" + victim, "..", ".x", "a/b", "/etc",
                     "/" + str(vmd), "x/../../" + victim, "a..b",
                     "*", "%", "a\x01b"):
            for cmd in ("CREATE", "DELETE", "STATUS"):
                text = '%s "%s"%s' % (cmd, name.replace('"', '\\"'),
                                      " (MESSAGES)" if cmd == "STATUS"
                                      else "")
                lines, done = c.do(text)
                assert done.startswith(b"NO ") or \
                    done.startswith(b"BAD "), (text, done)
                assert not lines, (text, lines)
            assert c.do('RENAME Trash "%s"' % name)[1].startswith(
                (b"NO ", b"BAD "))
        # references and patterns are only matched against the names
        assert c.listing('LIST "../" "*"') == {}
        assert c.listing('LIST "%s/" "*"' % vmd) == {}
        assert c.listing('LIST "" "../*"') == {}
    # folders linked into the Maildir to the other user's mail
    os.symlink(str(vmd), str(md / ".Evil"))
    os.symlink(str(vmd / ".Secret"), str(md / ".Evil2"))
    os.symlink(str(vmd / ".Secret"), str(md / ".Trash.Link"))
    # a real folder whose cur/ and new/ lead to the other user's INBOX
    (md / ".Sneaky").mkdir()
    os.symlink(str(vmd / "cur"), str(md / ".Sneaky" / "cur"))
    os.symlink(str(vmd / "new"), str(md / ".Sneaky" / "new"))
    (md / ".Sneaky" / "tmp").mkdir()
    before = sorted(str(p) for p in vmd.rglob("*") if "herald-index"
                    not in str(p))
    with session(imap, addr, pw) as c:
        ls = c.listing('LIST "" "*"')
        assert "Evil" not in ls and "Evil2" not in ls and \
            "Trash.Link" not in ls and "Sneaky" not in ls, ls
        assert ls["Trash"] == {"\\HasNoChildren", "\\Trash"}
        lines = c.ok('LIST "" "*" RETURN (STATUS (MESSAGES))')
        assert not any(b"Sneaky" in ln for ln in lines), lines
        for name in ("Evil", "Evil2", "Trash.Link", "Sneaky"):
            assert c.do("STATUS %s (MESSAGES)" % name)[1].startswith(
                b"NO [NONEXISTENT]"), name
            assert c.do("DELETE %s" % name)[1].startswith(
                b"NO [NONEXISTENT]"), name
            assert c.do("RENAME %s Mine" % name)[1].startswith(
                b"NO [NONEXISTENT]"), name
            assert c.do("CREATE %s" % name)[1].startswith(b"NO "), name
            if name == "Sneaky":
                continue
            assert c.do("RENAME Junk %s" % name)[1].startswith(
                b"NO [ALREADYEXISTS]"), name
            assert c.do("GETQUOTAROOT %s" % name)[1].startswith(
                b"NO [NONEXISTENT]"), name
        # renaming the parent of a linked name must not carry it along
        # into a place where it is followed
        c.ok("DELETE Trash")
        assert "Trash.Link" not in c.listing('LIST "" "*"')
    after = sorted(str(p) for p in vmd.rglob("*") if "herald-index"
                   not in str(p))
    assert before == after
    assert os.path.islink(md / ".Evil") and os.path.islink(md / ".Evil2")
    with session(imap, vaddr, vpw) as c:
        assert c.ok("STATUS INBOX (MESSAGES)") == \
            [b'* STATUS "INBOX" (MESSAGES 1)']
        assert "Secret" in c.listing('LIST "" "*"')


def test_sessions_of_one_user_share_the_index(imap, token):
    """Several sessions of one user at once (LMDB allows one handle per
    Maildir per process: the worker shares it); each sees the others'
    changes, and the last one to end closes it cleanly."""
    addr, pw, _ = new_user(imap, token)
    clients = [session(imap, addr, pw) for _ in range(6)]
    try:
        for i, c in enumerate(clients):
            c.ok("CREATE Shared%d" % i)
        for c in clients:
            ls = c.listing('LIST "" "Shared*"')
            assert set(ls) == {"Shared%d" % i for i in range(6)}, ls
        # pipelined: commands wait for the job before them
        c = clients[0]
        c.send("p1 CREATE Pipe1\r\np2 STATUS Pipe1 (MESSAGES)\r\n"
               "p3 DELETE Pipe1\r\np4 STATUS Pipe1 (MESSAGES)\r\n")
        r = c.until_tagged("p4")
        # (the MAILBOXID of RFC 8474 is test_imap_objectid.py's)
        r[0] = re.sub(rb"\[MAILBOXID \(\w+\)\] ", b"", r[0])
        assert r == [b"p1 OK CREATE completed",
                     b'* STATUS "Pipe1" (MESSAGES 0)',
                     b"p2 OK STATUS completed",
                     b"p3 OK DELETE completed",
                     b"p4 NO [NONEXISTENT] No such mailbox"], r
        for c in clients[::2]:
            c.close()
        for c in clients[1::2]:
            c.ok("DELETE Shared0") if c is clients[1] else None
            assert "Shared0" not in c.listing('LIST "" "*"')
    finally:
        for c in clients:
            c.close()
    with session(imap, addr, pw) as c:
        assert set(c.listing('LIST "" "Shared*"')) == \
            {"Shared%d" % i for i in range(1, 6)}
    assert "warning" not in "\n".join(
        ln for ln in imap.log_text().splitlines() if "imapd" in ln)


def test_folder_count_is_bounded(imap, token):
    """More folders than a user may have (made on disk by another tool):
    LIST sends at most IMAPD_FOLDERS_MAX (5,000) and says NO [LIMIT];
    CREATE refuses another one."""
    addr, pw, local = new_user(imap, token)
    with session(imap, addr, pw) as c:
        c.ok("NOOP")
    md = imap.maildir(local)
    for i in range(5000):
        for sub in ("cur", "new", "tmp"):
            (md / (".f%04d" % i) / sub).mkdir(parents=True)
    with session(imap, addr, pw) as c:
        t0 = time.monotonic()
        lines, done = c.do_long('LIST "" "*"')
        assert done.startswith(b"NO [LIMIT]"), done
        assert len(lines) == 5000
        assert time.monotonic() - t0 < 20
        assert len(c.listing('LIST "" "f000%"')) == 10
        assert c.do("CREATE One.More")[1].startswith(b"NO [LIMIT]")
        assert not (md / ".One").exists()
