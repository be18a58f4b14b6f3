"""
test_dns - herald's resolver (lib/mail/dns.c) through `heraldctl dns
lookup`, against real DNS servers on loopback (dnsserver.py): knotd with
DNSSEC-signed, unsigned and broken zones, and a dnslib server that
injects SERVFAIL, silence and truncation.

herald.conf points everything at them: dns_stub_zones for herald.test,
the reverse zone and fault.test, dns_forwarders at the fault server
(which refuses every other name), and herald.test's DS as the only
trust anchor. So no query can leave the machine, and a name outside the
test zones fails at once instead of waiting on root servers.
"""
import json
import subprocess
import time

import pytest

import dnsserver as D
import herald as H

pytestmark = pytest.mark.skipif(not D.have_tools(),
                                reason="knot, ldnsutils or python3-dnslib not "
                                "installed (scripts/deps.sh)")


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dns")
    knot = D.KnotZones(folder)
    fault = D.FaultServer()
    try:
        knot.start()
        fault.start()
        conf = folder / "herald.conf"
        conf.write_text(
            "run_directory = run\n"
            "dns_forwarders = 127.0.0.1@%d\n"
            "dns_stub_zones = herald.test=127.0.0.1@%d, "
            "%s=127.0.0.1@%d, fault.test=127.0.0.1@%d\n"
            "dns_trust_anchor_file = %s\n"
            "dns_timeout = 2s\n" % (fault.port, knot.port, D.REVERSE,
                                    knot.port, fault.port,
                                    knot.anchor_file))
        yield {"conf": conf, "knot": knot, "fault": fault}
    finally:
        fault.stop()
        knot.stop()


def lookup(dns, rtype, name, json_out=False, conf=None):
    argv = [str(H.binpath("heraldctl")), "-c", str(conf or dns["conf"])]
    if json_out:
        argv.append("--json")
    argv += ["dns", "lookup", rtype, name]
    t0 = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    r.elapsed = time.monotonic() - t0
    return r


def test_secure_mx_sorted(dns):
    r = lookup(dns, "MX", "herald.test")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "herald.test MX: ok, secure",
        "  10 mx1.herald.test.",
        "  20 mx2.herald.test."]
    j = json.loads(lookup(dns, "MX", "herald.test", json_out=True).stdout)
    assert j["status"] == "ok" and j["security"] == "secure"
    assert j["null_mx"] is False
    assert j["records"] == ["10 mx1.herald.test.", "20 mx2.herald.test."]


def test_secure_records_of_each_type(dns):
    cases = [
        ("A", "mx1.herald.test", "192.0.2.10"),
        ("AAAA", "mx1.herald.test", "2001:db8::10"),
        ("TLSA", "_25._tcp.mx1.herald.test", "3 1 1 " + D.TLSA_DATA),
        ("TXT", "herald.test", '"v=spf1 -all"'),
        # two 255-byte strings joined into one
        ("TXT", "long.herald.test", '"%s"' % "".join(D.TXT_LONG)),
        ("PTR", "ptr.herald.test", "mx1.herald.test."),
    ]
    for rtype, name, want in cases:
        r = lookup(dns, rtype, name, json_out=True)
        assert r.returncode == 0, (rtype, name, r.stdout, r.stderr)
        j = json.loads(r.stdout)
        assert j["security"] == "secure", j
        assert j["records"] == [want], j


def test_cname_followed(dns):
    r = lookup(dns, "A", "alias.herald.test")
    assert r.returncode == 0, r.stderr
    assert "canonical name: mx1.herald.test" in r.stdout
    assert "  192.0.2.10" in r.stdout.splitlines()


def test_ptr_of_an_address(dns):
    # 192.0.2.0/24 is a default local zone of unbound (RFC 6303): the
    # stub zone must reach the server all the same
    r = lookup(dns, "PTR", "192.0.2.10")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        "10.2.0.192.in-addr.arpa PTR: ok, insecure",
        "  mx1.herald.test."]


def test_insecure_delegation(dns):
    r = lookup(dns, "MX", "insecure.herald.test")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "insecure.herald.test MX: ok, insecure",
        "  10 mx.insecure.herald.test."]


def test_bogus_signature(dns):
    r = lookup(dns, "MX", "bogus.herald.test", json_out=True)
    assert r.returncode == 1
    j = json.loads(r.stdout)
    assert j["status"] == "bogus" and j["security"] == "bogus", j
    assert j["records"] == []
    assert "signature" in j["reason"], j
    # the unbroken A record of the same zone validates
    r = lookup(dns, "A", "mx.bogus.herald.test")
    assert r.stdout.startswith("mx.bogus.herald.test A: ok, secure"), \
        r.stdout


def test_nxdomain_and_nodata(dns):
    r = lookup(dns, "A", "nothing.herald.test")
    assert r.returncode == 1
    assert r.stdout.strip() == "nothing.herald.test A: nxdomain, secure"
    r = lookup(dns, "AAAA", "mx2.herald.test")
    assert r.returncode == 1
    assert r.stdout.strip() == "mx2.herald.test AAAA: nodata, secure"


def test_null_mx(dns):
    r = lookup(dns, "MX", "nullmx.herald.test", json_out=True)
    assert r.returncode == 0
    j = json.loads(r.stdout)
    assert j["null_mx"] is True and j["records"] == ["0 ."], j
    r = lookup(dns, "MX", "nullmx.herald.test")
    assert "null MX (RFC 7505" in r.stdout


def test_servfail_is_tempfail(dns):
    r = lookup(dns, "A", "servfail.fault.test")
    assert r.returncode == 1
    assert r.stdout.startswith("servfail.fault.test A: tempfail (SERVFAIL"),\
        r.stdout
    assert r.elapsed < 2.0, r.elapsed


def test_timeout_is_bounded(dns):
    r = lookup(dns, "A", "timeout.fault.test")
    assert r.returncode == 1
    assert "tempfail (no answer within 2000 ms)" in r.stdout, r.stdout
    assert 1.5 < r.elapsed < 5.0, r.elapsed


def test_truncated_udp_retried_over_tcp(dns):
    before = len(dns["fault"].queries)
    r = lookup(dns, "A", "tc.fault.test")
    assert r.returncode == 0, r.stdout
    assert "  192.0.2.99" in r.stdout.splitlines()
    seen = dns["fault"].queries[before:]
    assert ("udp", "tc.fault.test") in seen
    assert ("tcp", "tc.fault.test") in seen


def test_unknown_names_fail_fast_at_the_forwarder(dns):
    # outside the stub zones everything goes to dns_forwarders only; the
    # fault server refuses: a fast tempfail, and it saw the question
    for name in ("www.example.com", "example.org"):
        before = len(dns["fault"].queries)
        r = lookup(dns, "A", name)
        assert r.returncode == 1
        assert r.stdout.startswith("%s A: tempfail (REFUSED" % name) or \
            r.stdout.startswith("%s A: tempfail (SERVFAIL" % name), r.stdout
        assert r.elapsed < 2.0, r.elapsed
        assert ("udp", name) in dns["fault"].queries[before:]


def test_bad_settings_and_type(dns, tmp_path):
    r = lookup(dns, "SOA", "herald.test")
    assert r.returncode == 2
    assert "unknown type \"SOA\"" in r.stderr
    bad = tmp_path / "bad.conf"
    for line, words in [
            ("dns_stub_zones = herald.test", "zone=address"),
            ("dns_forwarders = ns.example.org", "numeric IP address"),
            ("dns_stub_zones = herald.test=127.0.0.1@99999", "bad port")]:
        bad.write_text("run_directory = run\n%s\n" % line)
        r = subprocess.run([str(H.binpath("heraldctl")), "-c", str(bad),
                            "config", "dns_stub_zones"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        assert "bad.conf:2" in r.stderr and words in r.stderr, r.stderr
    bad.write_text("run_directory = run\ndns_forwarders = 127.0.0.1@%d\n"
                   "dns_trust_anchor_file = missing.key\n"
                   % dns["fault"].port)
    r = lookup(dns, "A", "herald.test", conf=bad)
    assert r.returncode == 1
    assert "missing.key" in r.stderr, r.stderr
