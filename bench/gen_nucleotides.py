#!/usr/bin/env python3
"""Synthetic nucleotide database with known families, for bench/nucleotide.sh.

Model: F families, each with a random ancestor of lognormal length (median
--median-len, clipped to [--min-len, --max-len]) at --gc GC content. Family sizes
follow a power law (many singletons, a few large families, capped at --max-family).
Each member is the ancestor after point events at a divergence drawn uniformly from
[--min-div, --max-div] of its length: substitutions, and insertions and deletions of
1-3 bases (--indel-frac of the events). With probability --rc-rate a member is written
as its reverse complement (the minus strand), with --dup-rate it is an exact copy of an
earlier member of its family. Records of consecutive blocks of --block families are
shuffled together, so families interleave as in a real database.

Headers: >SYN_NNNNNNNN.1 family F member M [minus]. The truth TSV (--truth) has
accession, family, strand (+ or -), divergence. Everything follows from --seed.
"""
import argparse
import math
import random
import sys

COMP = str.maketrans("ACGT", "TGCA")


def ancestor(rng, args):
    n = int(round(rng.lognormvariate(math.log(args.median_len), args.len_sigma)))
    n = max(args.min_len, min(args.max_len, n))
    gc = args.gc / 2
    return "".join(rng.choices("ACGT", weights=(0.5 - gc, gc, gc, 0.5 - gc), k=n))


def mutate(rng, seq, div, indel_frac):
    s = list(seq)
    for _ in range(int(div * len(seq))):
        if not s:
            break
        p = rng.randrange(len(s))
        if rng.random() < indel_frac:
            k = rng.randint(1, 3)
            if rng.random() < 0.5:
                del s[p:p + k]
            else:
                s[p:p] = rng.choices("ACGT", k=k)
        else:
            s[p] = rng.choice([c for c in "ACGT" if c != s[p]])
    return "".join(s)


def family_size(rng, alpha, cap):
    return min(cap, int(rng.paretovariate(alpha)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--n-seqs", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--output", default="-")
    ap.add_argument("--truth")
    ap.add_argument("--median-len", type=int, default=800)
    ap.add_argument("--len-sigma", type=float, default=0.35)
    ap.add_argument("--min-len", type=int, default=200)
    ap.add_argument("--max-len", type=int, default=3000)
    ap.add_argument("--gc", type=float, default=0.5)
    ap.add_argument("--family-alpha", type=float, default=1.1)
    ap.add_argument("--max-family", type=int, default=500)
    ap.add_argument("--min-div", type=float, default=0.0)
    ap.add_argument("--max-div", type=float, default=0.12)
    ap.add_argument("--indel-frac", type=float, default=0.2)
    ap.add_argument("--rc-rate", type=float, default=0.1)
    ap.add_argument("--dup-rate", type=float, default=0.02)
    ap.add_argument("--wrap", type=int, default=60)
    ap.add_argument("--block", type=int, default=50)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    out = sys.stdout if args.output == "-" else open(args.output, "w")
    truth = open(args.truth, "w") if args.truth else None
    if truth:
        truth.write("accession\tfamily\tstrand\tdivergence\n")
    written = 0
    family = 0
    while written < args.n_seqs:
        block = []
        for _ in range(args.block):
            family += 1
            anc = ancestor(rng, args)
            members = []
            for m in range(1, family_size(rng, args.family_alpha, args.max_family) + 1):
                if members and rng.random() < args.dup_rate:
                    seq, div = rng.choice(members)
                else:
                    div = rng.uniform(args.min_div, args.max_div)
                    seq = mutate(rng, anc, div, args.indel_frac) if m > 1 else anc
                members.append((seq, div))
                minus = rng.random() < args.rc_rate
                block.append((family, m, seq.translate(COMP)[::-1] if minus else seq, minus, div))
        rng.shuffle(block)
        for fam, m, seq, minus, div in block:
            if written == args.n_seqs:
                break
            written += 1
            acc = "SYN_%08d.1" % written
            out.write(">%s family %d member %d%s\n" % (acc, fam, m, " minus" if minus else ""))
            for j in range(0, len(seq), args.wrap):
                out.write(seq[j:j + args.wrap] + "\n")
            if truth:
                truth.write("%s\t%d\t%s\t%.4f\n" % (acc.split(".")[0], fam, "-" if minus else "+", div))
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
