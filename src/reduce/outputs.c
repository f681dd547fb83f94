/* The outputs of a reduction: the reduced FASTA (references, in input order), the delta
 * store, the membership TSV, CD-HIT's .clstr and the aligner's taxid map. Each is written
 * under a temporary name beside its path and renamed into place only when all are done. */
#define _GNU_SOURCE
#include "reduce_internal.h"
#include "dstore_internal.h"
#include "mem/sorter_internal.h"
#include "store/format_internal.h"
#include "store/store_internal.h"
#include "talaria/error.h"
#include "talaria/log.h"
#include "util/files_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FASTA_WIDTH 60 /* residues per line of the reduced FASTA */

typedef struct {
    tal_reduction_t *x;
    const tal_cluster_t *c;
    uint32_t *ref_index;      /* record id -> its index among the references */
    tal_member_slot_t *slots; /* TAL_MEMBER_SLOTS_READ at a time */
    tal_outfile_t fasta, members, clstr, taxid;
    tal_dwriter_t *dw;
    char *deltas_tmp;
    uint64_t missing_taxid;   /* kraken: references left untagged; else records not mapped */
    uint64_t malformed_taxid; /* of those, with a taxid tag that is not a number */
    uint64_t first_malformed; /* its record id */
} outputs_t;

static void write_accession(FILE *f, const char *h, size_t len)
{
    const char *acc;
    size_t acc_len;
    tal_dstore_accession(h, len, &acc, &acc_len);
    fwrite(acc, 1, acc_len, f);
}

/* Locks the delta store's temporary as in use (files_internal.h) and has a signal
 * remove it. */
static int hold_temporary(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || tal_temp_lock(fd) != 0) {
        tal_log_error("%s was removed while being written: is another run writing the same "
                      "output?",
                      path);
        if (fd >= 0) close(fd);
        return TAL_EIO;
    }
    tal_cleanup_extra_add(path, 0, fd);
    return 0;
}

static uint64_t input_length(void *ctx, uint64_t i) { return tal_length(ctx, i); }

/* The input's line layout (store format 1.2), checked whole before the delta store keeps
 * it; none for older stores. */
static int line_layout(tal_reduction_t *x, const void **data, size_t *size)
{
    tal_layout_t l;
    const char *bad;
    if (!tal_store_layout_(x->store, &l)) return 0;
    if ((bad = tal_layout_check(&l, input_length, (void *)&x->lengths))) {
        tal_log_error("%s: the line layout section is damaged: %s", x->in, bad);
        return TAL_EINPUT;
    }
    *data = l.data;
    *size = l.size;
    return 0;
}

static int open_outputs(outputs_t *o)
{
    tal_reduction_t *x = o->x;
    int rc, force = x->opt->force;
    tal_dlayout_t layout;
    const void *line = NULL;
    size_t line_size = 0;
    if ((rc = tal_outfile_open(&o->fasta, x->out, force)) < 0) return rc;
    if ((rc = tal_outfile_open(&o->members, x->members_path, force)) < 0) return rc;
    if (x->opt->clstr_path && (rc = tal_outfile_open(&o->clstr, x->opt->clstr_path, force)) < 0)
        return rc;
    if (x->taxid_path && (rc = tal_outfile_open(&o->taxid, x->taxid_path, force)) < 0) return rc;
    if (asprintf(&o->deltas_tmp, "%s.tmp-%d", x->deltas_path, (int)getpid()) < 0) {
        o->deltas_tmp = NULL;
        return TAL_ENOMEM;
    }
    tal_sweep_beside(x->deltas_path);
    if ((rc = line_layout(x, &line, &line_size)) < 0) return rc;
    layout = (tal_dlayout_t){.records = x->info.records,
                             .references = o->c->references,
                             .header_bytes = x->info.header_bytes,
                             .delta_bytes = x->delta_used,
                             .identity = x->identity,
                             .coverage = x->coverage,
                             .nucleotide = x->info.alphabet == TAL_ALPHABET_NUCLEOTIDE,
                             .fasta_path = x->out,
                             .provenance = x->opt->provenance,
                             .budget = x->budget,
                             .tmp_dir = x->scratch,
                             .sort_bytes = x->sort_bytes,
                             .line_layout = line,
                             .line_layout_size = line_size};
    if ((rc = tal_dwriter_open(&o->dw, o->deltas_tmp, &layout)) < 0) return rc;
    if ((rc = hold_temporary(o->deltas_tmp)) < 0) return rc;
    fputs(x->info.alphabet == TAL_ALPHABET_NUCLEOTIDE
              ? "#member\treference\tidentity\tcoverage\tstrand\n"
              : "#member\treference\tidentity\tcoverage\n",
          o->members.f);
    if (o->taxid.f) fputs(tal_aligner_side_header(x->opt->aligner), o->taxid.f);
    return 0;
}

/* A reference's header line; *written counts its bytes. Kraken wants the taxid in the
 * accession ("ACC|kraken:taxid|N"). */
static void write_header(const outputs_t *o, const tal_record_t *rec, long tax, uint64_t *written)
{
    FILE *f = o->fasta.f;
    fputc('>', f);
    if (o->x->opt->aligner == TAL_ALIGNER_KRAKEN && tax >= 0) {
        const char *acc;
        size_t acc_len, acc_end;
        tal_dstore_accession(rec->header, rec->header_len, &acc, &acc_len);
        acc_end = (size_t)(acc + acc_len - rec->header);
        *written += (uint64_t)fprintf(f, "%.*s|kraken:taxid|%ld", (int)acc_end, rec->header, tax);
        fwrite(acc + acc_len, 1, rec->header_len - acc_end, f);
        *written += rec->header_len - acc_end + 1;
    } else {
        fwrite(rec->header, 1, rec->header_len, f);
        *written += rec->header_len + 1;
    }
    fputc('\n', f);
    (*written)++;
}

/* A record's taxid, counting those without one (references only for kraken, whose tags
 * go on references; every record for a side file). */
static long record_taxid(outputs_t *o, uint64_t id, const char *header, size_t len)
{
    long tax = tal_header_taxid(header, len);
    if (tax >= 0) return tax;
    o->missing_taxid++;
    if (tax == TAL_TAXID_MALFORMED && !o->malformed_taxid++) o->first_malformed = id;
    return tax;
}

/* The references: the reduced FASTA in input order, each with its place and checksum in
 * the delta store (and for kraken its taxid in its header). */
static int write_references(outputs_t *o)
{
    tal_reduction_t *x = o->x;
    int rc;
    uint64_t n = x->info.records, fasta_at = 0;
    tal_reduction_progress(x, "writing", 0, n);
    for (uint64_t i = 0; i < n; i++) {
        tal_record_t rec;
        tal_dref_t dref;
        const char *seq;
        uint64_t len = tal_length(&x->lengths, i), start = fasta_at;
        long tax;
        if (o->c->ref[i] != i) continue;
        if ((rc = tal_reduction_header(x, i, &rec.header, &rec.header_len)) < 0) return rc;
        if ((rc = tal_reduction_residues(x, i, &x->buf, &x->buf_cap, &seq)) < 0) return rc;
        tax = x->opt->aligner == TAL_ALIGNER_KRAKEN ? record_taxid(o, i, rec.header, rec.header_len)
                                                    : -1;
        write_header(o, &rec, tax, &fasta_at);
        for (uint64_t p = 0; p < len; p += FASTA_WIDTH) {
            size_t w = len - p < FASTA_WIDTH ? (size_t)(len - p) : FASTA_WIDTH;
            fwrite(seq + p, 1, w, o->fasta.f);
            fputc('\n', o->fasta.f);
            fasta_at += w + 1;
        }
        dref = (tal_dref_t){start, fasta_at - start, len, XXH3_64bits(seq, (size_t)len), i};
        if ((rc = tal_dwriter_reference(o->dw, &dref)) < 0) return rc;
    }
    return 0;
}

/* A record's line in the side file: every record, reference or member, with its own taxid
 * (the aligners name "db|ACC|NAME" sequences ACC). */
static void write_side_line(outputs_t *o, uint64_t id, const char *header, size_t len)
{
    tal_keys_t keys;
    long tax = record_taxid(o, id, header, len);
    if (tax < 0) return;
    tal_header_keys(header, len, &keys);
    tal_aligner_side_line(o->x->opt->aligner, o->taxid.f, keys.alias ? keys.alias : keys.primary,
                          keys.alias ? keys.alias_len : keys.primary_len, tax);
}

/* Every record in input order: the delta store's entry, its side-file line and, for
 * members, a TSV line. */
static int write_records(outputs_t *o)
{
    tal_reduction_t *x = o->x;
    uint64_t n = x->info.records;
    int rc;
    for (uint64_t i = 0; i < n; i++) {
        tal_record_t rec;
        tal_drec_t d;
        uint64_t r = o->c->ref[i], doff = 0;
        const tal_member_slot_t *m = &o->slots[i % TAL_MEMBER_SLOTS_READ];
        if ((i & 65535) == 0) tal_reduction_progress(x, "writing", i, n);
        if ((i & 4095) == 0) tal_store_release_(x->store, TAL_SEC_RECORD_CHECKSUMS);
        if (i % TAL_MEMBER_SLOTS_READ == 0) {
            size_t count = n - i < TAL_MEMBER_SLOTS_READ ? (size_t)(n - i) : TAL_MEMBER_SLOTS_READ;
            if ((rc = tal_reduction_slots(x, o->slots, count, i, 0)) < 0) return rc;
        }
        if ((rc = tal_reduction_header(x, i, &rec.header, &rec.header_len)) < 0) return rc;
        if (o->taxid.f) write_side_line(o, i, rec.header, rec.header_len);
        memset(&d, 0, sizeof d);
        d.header = rec.header;
        d.header_len = rec.header_len;
        d.length = tal_length(&x->lengths, i);
        d.checksum = x->checksums[i]; /* tal_record_checksum, checked by the first pass */
        d.ref = o->ref_index[r];
        if (r == i) {
            d.flags = TAL_DREC_REFERENCE;
            d.identity = d.coverage = 1.0f;
        } else if (!(m->flags & (TAL_MEMBER_ALIGNED | TAL_MEMBER_IDENTICAL))) {
            tal_log_error("internal error: record %llu has no reference in %s",
                          (unsigned long long)i + 1, x->scratch);
            return TAL_EIO;
        } else {
            d.identity = m->identity;
            d.coverage = m->coverage;
            if (m->flags & TAL_MEMBER_IDENTICAL) {
                d.flags = TAL_DREC_IDENTICAL;
            } else {
                doff = m->delta_off;
                d.delta_len = m->delta_len;
                if (m->flags & TAL_MEMBER_MINUS) {
                    d.flags = TAL_DREC_MINUS;
                    x->minus++;
                }
            }
        }
        if ((rc = tal_dwriter_record(o->dw, &d, doff)) < 0) return rc;
        if (r != i) {
            tal_record_t rr; /* the reference's, from anywhere in the store */
            if ((rc = tal_store_header_pread_(x->store, r, &rr.header, &rr.header_len)) < 0)
                return rc;
            write_accession(o->members.f, rec.header, rec.header_len);
            fputc('\t', o->members.f);
            write_accession(o->members.f, rr.header, rr.header_len);
            fprintf(o->members.f, "\t%.4f\t%.4f", (double)d.identity, (double)d.coverage);
            if (x->info.alphabet == TAL_ALPHABET_NUCLEOTIDE)
                fputs(d.flags & TAL_DREC_MINUS ? "\t-" : "\t+", o->members.f);
            fputc('\n', o->members.f);
        }
    }
    if ((rc = tal_dwriter_copy_deltas(o->dw, x->delta_fd)) < 0) return rc;
    if ((rc = tal_dwriter_finish(o->dw)) < 0) return rc;
    o->dw = NULL;
    return 0;
}

/* One member line of a .clstr: its place in the cluster, length, accession, identity. */
static int clstr_member(outputs_t *o, uint64_t id, uint64_t place, const char **strand)
{
    tal_reduction_t *x = o->x;
    const char *unit = x->info.alphabet == TAL_ALPHABET_NUCLEOTIDE ? "nt" : "aa";
    tal_record_t rec;
    int rc;
    if ((rc = tal_reduction_slots(x, o->slots, 1, id, 0)) < 0) return rc;
    if ((rc = tal_store_header_pread_(x->store, id, &rec.header, &rec.header_len)) < 0) return rc;
    fprintf(o->clstr.f, "%llu\t%llu%s, >", (unsigned long long)place,
            (unsigned long long)tal_length(&x->lengths, id), unit);
    write_accession(o->clstr.f, rec.header, rec.header_len);
    if (**strand) *strand = o->slots[0].flags & TAL_MEMBER_MINUS ? "-/" : "+/";
    fprintf(o->clstr.f, "... at %s%.2f%%\n", *strand, 100.0 * (double)o->slots[0].identity);
    return 0;
}

/* CD-HIT's .clstr: clusters in reference order, the reference first, members by id. The
 * members come through a sorter keyed by their cluster (no memory by record), and their
 * headers from all over the store by pread. */
static int write_clstr(outputs_t *o)
{
    tal_reduction_t *x = o->x;
    const tal_cluster_t *c = o->c;
    uint64_t n = x->info.records, k = 0, buf[4096], pending = UINT64_MAX;
    const char *unit = x->info.alphabet == TAL_ALPHABET_NUCLEOTIDE ? "nt" : "aa";
    const char *strand = x->info.alphabet == TAL_ALPHABET_NUCLEOTIDE ? "+/" : "";
    const uint64_t *recs = NULL;
    size_t used = 0, count = 0, at = 0;
    tal_sorter_t *s = NULL;
    tal_sorter_opt_t so;
    int rc, ended = 0;
    memset(&so, 0, sizeof so);
    so.record_size = 8;
    so.buffer_bytes = x->sort_bytes ? x->sort_bytes : TAL_SORTER_DEFAULT_BUFFER;
    so.expected = n;
    so.tmp_dir = x->scratch;
    so.what = "cluster members";
    so.budget = x->budget;
    so.component = TAL_MEM_SORT;
    if ((rc = tal_sorter_create(&s, &so)) < 0) return rc;
    /* cluster << 32 | member: by cluster, then by id */
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        if (c->ref[i] == i) continue;
        buf[used++] = (uint64_t)o->ref_index[c->ref[i]] << 32 | i;
        if (used == sizeof buf / sizeof *buf) {
            rc = tal_sorter_add(s, buf, used);
            used = 0;
        }
    }
    if (rc == 0 && used) rc = tal_sorter_add(s, buf, used);
    if (rc == 0) rc = tal_sorter_finish(s);
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        tal_record_t rec;
        uint64_t place = 1;
        if (c->ref[i] != i) continue;
        if ((rc = tal_store_header_pread_(x->store, i, &rec.header, &rec.header_len)) < 0) break;
        fprintf(o->clstr.f, ">Cluster %llu\n0\t%llu%s, >", (unsigned long long)k,
                (unsigned long long)tal_length(&x->lengths, i), unit);
        write_accession(o->clstr.f, rec.header, rec.header_len);
        fputs("... *\n", o->clstr.f);
        for (;;) {
            if (pending == UINT64_MAX) {
                if (at == count) {
                    const void *r;
                    if (ended || (rc = tal_sorter_read(s, &r, &count)) <= 0) {
                        ended = 1;
                        break;
                    }
                    rc = 0;
                    recs = r;
                    at = 0;
                }
                pending = recs[at++];
            }
            if (pending >> 32 != k) break;
            if ((rc = clstr_member(o, (uint32_t)pending, place++, &strand)) < 0) break;
            pending = UINT64_MAX;
        }
        if (rc < 0) break;
        k++;
    }
    tal_sorter_destroy(s);
    return rc < 0 ? rc : 0;
}

/* Everything is complete: into place all together (a failure puts back what was there). */
static int commit_outputs(outputs_t *o)
{
    tal_reduction_t *x = o->x;
    tal_outfile_t *files[] = {&o->fasta, &o->members, &o->clstr, &o->taxid};
    char *from[5];
    const char *to[5];
    int rc, n = 0;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        if ((rc = tal_outfile_close(files[i])) < 0) return rc;
    from[n] = o->deltas_tmp;
    to[n++] = x->deltas_path;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        if (!files[i]->tmp) continue;
        from[n] = files[i]->tmp;
        to[n++] = files[i]->path;
    }
    if ((rc = tal_commit_renames(from, to, n, x->opt->force)) < 0) return rc;
    tal_cleanup_extra_done(o->deltas_tmp, 0);
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) tal_outfile_committed(files[i]);
    return 0;
}

static void warn_taxids(const outputs_t *o)
{
    const tal_reduction_t *x = o->x;
    int kraken = x->opt->aligner == TAL_ALIGNER_KRAKEN;
    tal_log_warn("%llu of %llu %s have no taxid in their header (OX=, TaxID=, taxid|N|)%s%s",
                 (unsigned long long)o->missing_taxid,
                 (unsigned long long)(kraken ? o->c->references : x->info.records),
                 kraken ? "references" : "records",
                 kraken ? "; their headers are left as they are" : "; they are not in ",
                 kraken ? "" : x->taxid_path);
    if (o->malformed_taxid) {
        const char *h = "";
        size_t len = 0;
        if (tal_store_header_(x->store, o->first_malformed, &h, &len) < 0) len = 0;
        tal_log_warn("%llu of them %s a taxid tag that is not a whole number up to 4000000000, "
                     "taken as none (the first: record %llu, '%.*s')",
                     (unsigned long long)o->malformed_taxid,
                     o->malformed_taxid == 1 ? "has" : "have",
                     (unsigned long long)o->first_malformed + 1, (int)(len > 200 ? 200 : len), h);
    }
}

int tal_reduction_write(tal_reduction_t *x, const tal_cluster_t *c)
{
    uint64_t n = x->info.records, k = 0;
    /* the reference index and the member slots read at a time (the checksums' pages go
     * with the header pages, in the header window) */
    uint64_t held = (n + 1) * 4 + TAL_MEMBER_SLOTS_READ * sizeof(tal_member_slot_t);
    outputs_t o;
    int rc;
    memset(&o, 0, sizeof o);
    o.x = x;
    o.c = c;
    if ((rc = tal_budget_reserve(x->budget, TAL_MEM_RECORDS, held)) < 0) return rc;
    if (!(o.ref_index = malloc((size_t)(n + 1) * sizeof *o.ref_index)) ||
        !(o.slots = malloc(TAL_MEMBER_SLOTS_READ * sizeof *o.slots))) {
        rc = TAL_ENOMEM;
        goto out;
    }
    for (uint64_t i = 0; i < n; i++) o.ref_index[i] = c->ref[i] == i ? (uint32_t)k++ : UINT32_MAX;
    if ((rc = open_outputs(&o)) < 0) goto out;
    if ((rc = write_references(&o)) < 0) goto out;
    if ((rc = write_records(&o)) < 0) goto out;
    if (o.clstr.f && (rc = write_clstr(&o)) < 0) goto out;
    if (o.missing_taxid) warn_taxids(&o);
    rc = commit_outputs(&o);
out:
    if (rc < 0) {
        tal_outfile_abort(&o.fasta);
        tal_outfile_abort(&o.members);
        tal_outfile_abort(&o.clstr);
        tal_outfile_abort(&o.taxid);
        if (o.dw) tal_dwriter_abort(o.dw);
        if (o.deltas_tmp) tal_cleanup_extra_done(o.deltas_tmp, 1);
    }
    free(o.deltas_tmp);
    free(o.ref_index);
    free(o.slots);
    tal_budget_release(x->budget, TAL_MEM_RECORDS, held);
    return rc;
}
