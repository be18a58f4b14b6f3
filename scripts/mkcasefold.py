#!/usr/bin/python3
# mkcasefold.py - generate imapd/imap_text_fold.h, the simple case folding
# table imap_text.c uses for i;unicode-casemap (RFC 5051) in SEARCH and SORT.
#
# Input: Unicode's CaseFolding.txt (Debian: apt install unicode-data, then
# /usr/share/unicode/CaseFolding.txt). Only the statuses C (common) and S
# (simple) are kept: simple case folding maps one code point to one.
# The build never runs this; rerun it by hand when Unicode changes:
#
#	scripts/mkcasefold.py /usr/share/unicode/CaseFolding.txt \
#	    > imapd/imap_text_fold.h
#
# The table is a sorted list of runs {lo, count, stride, delta}: the code
# points lo, lo + stride, ... (count of them) fold to themselves + delta.
# Stride 2 covers the alternating upper/lower pairs of Latin Extended,
# Cyrillic and so on; runs never overlap, so a binary search on lo finds
# the only run that can hold a code point.
import re
import sys


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else \
        '/usr/share/unicode/CaseFolding.txt'
    fold = {}
    version = '?'
    with open(path, encoding='utf-8') as f:
        for line in f:
            m = re.match(r'# CaseFolding-(\S+)\.txt', line)
            if m:
                version = m.group(1)
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            code, status, mapping = [x.strip() for x in
                                     line.split(';')[:3]]
            if status not in ('C', 'S'):
                continue
            fold[int(code, 16)] = int(mapping, 16)
    # idempotent, as Unicode promises: imap_text.c folds once
    assert all(t not in fold for t in fold.values())
    codes = sorted(fold)
    runs = []
    i = 0
    while i < len(codes):
        lo = codes[i]
        delta = fold[lo] - lo
        # stride 1: consecutive code points with one delta
        n1 = 1
        while lo + n1 in fold and fold[lo + n1] - (lo + n1) == delta:
            n1 += 1
        # stride 2: every other code point, the ones between unmapped
        n2 = 1
        while (lo + 2 * n2 in fold and
               fold[lo + 2 * n2] - (lo + 2 * n2) == delta and
               lo + 2 * n2 - 1 not in fold):
            n2 += 1
        if n2 > n1:
            runs.append((lo, n2, 2, delta))
            i += n2
        else:
            runs.append((lo, n1, 1, delta))
            i += n1
        # codes is sorted and each run took exactly its members
        assert i >= len(codes) or codes[i] > runs[-1][0] + \
            (runs[-1][1] - 1) * runs[-1][2]
    # check: the runs give back every mapping and nothing else
    got = {}
    for lo, n, stride, delta in runs:
        for k in range(n):
            got[lo + k * stride] = lo + k * stride + delta
    assert got == fold
    assert max(n for _, n, _, _ in runs) < 65536
    out = sys.stdout
    out.write('/*\n * imap_text_fold.h - Unicode %s simple case folding '
              '(CaseFolding.txt,\n * statuses C and S) as runs; generated '
              'by scripts/mkcasefold.py: do not\n * edit. %d mappings in %d '
              'runs.\n */\n' % (version, len(fold), len(runs)))
    out.write('#ifndef IMAPD_IMAP_TEXT_FOLD_H\n'
              '#define IMAPD_IMAP_TEXT_FOLD_H\n\n#include <stdint.h>\n\n')
    out.write('/* code points lo, lo + stride, ... (count) fold to '
              'themselves + delta */\n')
    out.write('struct imap_text_fold_run {\n\tuint32_t lo;\n'
              '\tuint16_t count;\n\tuint8_t stride;\n\tint32_t delta;\n};\n\n')
    out.write('static const struct imap_text_fold_run '
              'imap_text_fold_runs[] = {\n')
    for lo, n, stride, delta in runs:
        out.write('\t{0x%05x, %d, %d, %d},\n' % (lo, n, stride, delta))
    out.write('};\n\n#endif\n')


if __name__ == '__main__':
    main()
