"""
RFC 8970 PREVIEW against a real imapd: the capability; FETCH PREVIEW of
plain, HTML, multipart/alternative and attachment-only messages (the
empty string when there is no text); UTF-8 text as a literal; the
200-character bound; PREVIEW (LAZY) answering NIL until the preview is
made and then the text; a cached preview not reading the file again (the
file is rewritten in place after the first FETCH and the answer stays);
UID FETCH; bad PREVIEW syntax gets BAD and the session goes on.
"""
import re

import pytest

from test_imap_core import RawIMAP, imap_instance, ok


@pytest.fixture(scope="module")
def imap(tmp_path_factory, pki):
    yield from imap_instance(tmp_path_factory, pki, "imappreview")


def session(inst, local):
    addr = "%s@example.test" % local
    inst.add_user(addr, "pw-" + local)
    c = RawIMAP(inst.imap_port)
    c.login(addr, "pw-" + local)
    return c, local


def append(c, tag, msg):
    c.send(b"%s APPEND INBOX {%d+}\r\n%s\r\n" % (tag.encode(), len(msg),
                                                 msg))
    r = c.until_tagged(tag)
    assert r[-1].startswith(tag.encode() + b" OK"), r


def previews(c, tag, text):
    """{seq: preview bytes or None} of a FETCH; literals joined"""
    r = ok(c, tag, text)
    out = {}
    i = 0
    while i < len(r) - 1:
        ln = r[i]
        m = re.match(rb"\* (\d+) FETCH \(.*PREVIEW (NIL|\"(.*)\"|"
                     rb"\{(\d+)\})", ln)
        assert m, r
        seq = int(m.group(1))
        if m.group(2) == b"NIL":
            out[seq] = None
        elif m.group(4) is not None:
            n = int(m.group(4))
            lit = r[i + 1]
            out[seq] = lit[:n]
            assert lit[n:] == b")", lit
            i += 1
        else:
            out[seq] = re.sub(rb"\\(.)", rb"\1", m.group(3))
        i += 1
    return out


def msgfile(inst, local, marker):
    """The Maildir file of local's INBOX message holding marker"""
    for p in inst.maildir_files(local):
        if marker in p.read_bytes():
            return p
    raise AssertionError("no file with %r" % marker)


PLAIN = (b"Subject: plain\r\n\r\nHello   there,\r\n\r\nthis is "
         b"the\ttext.\r\n> quoted\r\n-- \r\nsig\r\n")
HTML = (b"Subject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><title>T</title><style>p{}</style></head><body>"
        b"<p>Dear&nbsp;<b>Ann</b> &amp; Bob</p><!-- no --><script>x=1"
        b"</script><div>Bye</div></body></html>\r\n")
ALT = (b"Subject: alt\r\nContent-Type: multipart/alternative; "
       b"boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n"
       b"<p>the html</p>\r\n--b\r\nContent-Type: text/plain\r\n"
       b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
       b"the pl=\r\nain \"one\" \\ back\r\n--b--\r\n")
NOTEXT = (b"Subject: picture\r\nContent-Type: multipart/mixed; "
          b"boundary=m\r\n\r\n--m\r\nContent-Type: image/png\r\n"
          b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n"
          b"--m\r\nContent-Type: text/plain\r\n"
          b"Content-Disposition: attachment; filename=a.txt\r\n\r\n"
          b"attached\r\n--m--\r\n")
UTF8 = (b"Subject: latin\r\nContent-Type: text/plain; "
        b"charset=iso-8859-1\r\nContent-Transfer-Encoding: "
        b"quoted-printable\r\n\r\nGr=FC=DFe aus K=F6ln\r\n")


def test_capability(imap):
    c, _ = session(imap, "pvcap")
    with c:
        r = ok(c, "a", "CAPABILITY")
        assert b"PREVIEW" in r[0].split(), r


def test_fetch_preview_kinds(imap):
    c, _ = session(imap, "pvkinds")
    with c:
        for i, m in enumerate((PLAIN, HTML, ALT, NOTEXT, UTF8)):
            append(c, "a%d" % i, m)
        ok(c, "s", "SELECT INBOX")
        got = previews(c, "f", "FETCH 1:5 (PREVIEW)")
        assert got == {1: b"Hello there, this is the text.",
                       2: b"Dear Ann & Bob Bye",
                       3: b"the plain \"one\" \\ back",
                       4: b"",
                       5: "Grüße aus Köln".encode()}, got
        # quoted and escaped, empty string (never NIL without LAZY),
        # UTF-8 in a literal
        r = ok(c, "g", "FETCH 3:5 PREVIEW")
        assert r[0] == b'* 3 FETCH (PREVIEW "the plain \\"one\\" \\\\ ' \
            b'back")', r
        assert r[1] == b'* 4 FETCH (PREVIEW "")', r
        n = len("Grüße aus Köln".encode())
        assert r[2] == b"* 5 FETCH (PREVIEW {%d}" % n, r
        # with other items, and as UID FETCH
        r = ok(c, "u", "UID FETCH 1:2 (FLAGS PREVIEW UID)")
        assert re.match(rb'\* 1 FETCH \(UID \d+ FLAGS \([^)]*\) PREVIEW '
                        rb'"Hello there, this is the text."\)$', r[0]), r
        assert re.match(rb'\* 2 FETCH \(UID \d+ FLAGS \([^)]*\) PREVIEW '
                        rb'"Dear Ann & Bob Bye"\)$', r[1]), r
        assert r[-1] == b"u OK UID FETCH completed", r


def test_length_bound(imap):
    c, _ = session(imap, "pvlong")
    with c:
        words = b" ".join(b"w%03d" % i for i in range(400))
        append(c, "a", b"Subject: long\r\n\r\n" + words + b"\r\n")
        append(c, "b", b"Subject: wide\r\nContent-Type: text/plain; "
                       b"charset=utf-8\r\n\r\n" + "ü".encode() * 500 +
               b"\r\n")
        ok(c, "s", "SELECT INBOX")
        got = previews(c, "f", "FETCH 1:2 PREVIEW")
        assert len(got[1]) <= 200 and got[1].startswith(b"w000 w001"), got
        text = got[2].decode("utf-8")	# whole characters only
        assert text == "ü" * 200, len(text)


def test_lazy_then_cached(imap):
    c, local = session(imap, "pvlazy")
    with c:
        append(c, "a", b"Subject: one\r\n\r\nfirst lazy text\r\n")
        append(c, "b", b"Subject: two\r\n\r\nsecond eager text\r\n")
        ok(c, "s", "SELECT INBOX")
        # not made yet: NIL, and made for later
        assert previews(c, "f", "FETCH 1 (PREVIEW (LAZY))") == {1: None}
        assert previews(c, "g", "FETCH 1 PREVIEW (LAZY)") == \
            {1: b"first lazy text"}
        # an eager PREVIEW of message 2 caches it
        assert previews(c, "h", "FETCH 2 PREVIEW") == \
            {2: b"second eager text"}
        # rewrite both files in place: cached previews do not read them
        for marker in (b"first lazy", b"second eager"):
            p = msgfile(imap, local, marker)
            data = p.read_bytes().replace(marker, b"CHANGED!!!!!")
            p.write_bytes(data)
        got = previews(c, "i", "FETCH 1:2 (PREVIEW)")
        assert got == {1: b"first lazy text", 2: b"second eager text"}, \
            got
        # LAZY of a cached one: the text at once
        assert previews(c, "j", "FETCH 2 (PREVIEW (LAZY))") == \
            {2: b"second eager text"}
        # the control: a message never previewed shows what it holds
        append(c, "k", b"Subject: three\r\n\r\nthird text\r\n")
        p = msgfile(imap, local, b"third text")
        p.write_bytes(p.read_bytes().replace(b"third", b"THIRD"))
        ok(c, "n", "NOOP")
        assert previews(c, "l", "FETCH 3 PREVIEW") == {3: b"THIRD text"}
        # LAZY with another item that reads the file: made at once
        append(c, "m", b"Subject: four\r\n\r\nfourth text\r\n")
        ok(c, "n2", "NOOP")
        r = ok(c, "o", "FETCH 4 (BODY.PEEK[TEXT] PREVIEW (LAZY))")
        assert b'PREVIEW "fourth text")' in b"".join(r), r


def test_bad_syntax(imap):
    c, _ = session(imap, "pvbad")
    with c:
        append(c, "a", PLAIN)
        ok(c, "s", "SELECT INBOX")
        for i, bad in enumerate(("(PREVIEW (FOO))", "(PREVIEW ())",
                                 "(PREVIEW (LAZY)", "PREVIEW (LAZY",
                                 "(PREVIEW LAZY)", "PREVIEW.PEEK",
                                 "(PREVIEW (LAZY FOO))",
                                 "PREVIEW[]", "(PREVIEW (\"LAZY\"))")):
            r = c.cmd("b%d" % i, "FETCH 1 " + bad)
            assert r[-1].startswith(b"b%d BAD " % i), (bad, r)
            assert not any(b"PREVIEW" in ln for ln in r[:-1]), (bad, r)
        # modifiers after PREVIEW alone are FETCH modifiers; LAZY twice
        # is allowed; the session is still fine
        r = ok(c, "m", "FETCH 1 PREVIEW (CHANGEDSINCE 1)")
        assert b"MODSEQ" in r[-2] and b"PREVIEW" in r[-2], r
        ok(c, "n", "FETCH 1 (PREVIEW (lazy LAZY) preview)")
        ok(c, "z", "NOOP")


def test_many_in_slices(imap):
    """More messages than one job makes: every preview right, in order"""
    c, local = session(imap, "pvmany")
    with c:
        ok(c, "s", "SELECT INBOX")
        new = imap.maildir(local) / "new"
        new.mkdir(parents=True, exist_ok=True)
        for i in range(600):
            (new / ("1765000000.M%dP1.pvtest" % i)).write_bytes(
                b"Subject: m%d\r\n\r\nmessage   number %d\r\n" % (i, i))
        ok(c, "n", "NOOP")
        got = previews(c, "f", "FETCH 1:* (PREVIEW)")
        assert len(got) == 600, len(got)
        want = {b"message number %d" % i for i in range(600)}
        assert set(got.values()) == want
        # and all cached now: LAZY has every one
        got = previews(c, "g", "FETCH 1:* (PREVIEW (LAZY))")
        assert set(got.values()) == want
