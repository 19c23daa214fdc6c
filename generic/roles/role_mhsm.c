/*
 * role_mhsm.c --
 *
 *	The Manufacturer HSM role (role_mhsm.h, docs/PROTOCOL.md): identity,
 *	job requests, job loading, device authenticity, overbuild counters,
 *	authorization codes, CoC collection, status and end certifiers.
 *
 *	Records are firmware blobs of the HSM (docs/FORMATS.md, "M-HSM
 *	records"):
 *	    mhsm.identity             UUID, kind, key ids, certificate, root,
 *	                              DFK-DB key
 *	    mhsm.r.<digest>           a served request (first 20 bytes of its
 *	                              SHA-384 in hex): binding and ticket ids
 *	    mhsm.t.<ticket id>        a ticket: counters, pending reservations,
 *	                              its secrets while live, the latest CoCs,
 *	                              and once ended its certifier (tombstone)
 *	    mhsm.c.<ticket id>.<n>    CoCs of a ticket, ROLE_MHSM_CHUNK a blob
 *	Every read-modify-write runs in hsm_fw_transaction, and every blob
 *	write is durable and rollback-protected when it returns: a code never
 *	leaves before its reservation is on disk.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "plat.h"
#include "roles/role_mhsm.h"
#include "proto/proto_device.h"

#define IDENTITY_BLOB "mhsm.identity"
#define RECORD_VERSION 1
#define CHUNK 64			/* CoCs per chunk blob */
#define MAX_PENDING 100000		/* reservations a ticket record holds */
#define MAX_TICKETS 4096		/* tickets a request may have */

/* Tags of the records (docs/FORMATS.md, "M-HSM records"). */
enum { ID_VERSION = 1, ID_UUID = 2, ID_KIND = 3, ID_SIGN_KEY = 4,
       ID_ENC_KEY = 5, ID_CERT = 6, ID_ROOT = 7, ID_DFK = 8, ID_CREATED = 9 };
enum { RQ_VERSION = 1, RQ_DIGEST = 2, RQ_JOB = 3, RQ_TASK = 4, RQ_UHSM = 5,
       RQ_UHSM_FP = 6, RQ_NONCE = 7, RQ_TICKET = 8, RQ_SERVED = 9,
       RQ_SEQUENCE = 10 };
enum { RT_ID = 1, RT_NAME = 2, RT_DEVICE = 3, RT_ACTION = 4, RT_MAX = 5 };
enum { TK_VERSION = 1, TK_ID = 2, TK_ENDED = 3, TK_REQUEST = 4, TK_NAME = 5,
       TK_DEVICE = 6, TK_ACTION = 7, TK_MAX = 8, TK_COMPLETED = 9,
       TK_SECRET = 10, TK_PENDING = 11, TK_COC = 12, TK_CHUNKS = 13,
       TK_JOB = 14, TK_TASK = 15, TK_LOADED = 16, TK_END_TYPE = 17,
       TK_REMOVED = 18, TK_END_PENDING = 19, TK_END_SIG = 20 };
enum { PD_DSN = 1, PD_CODE_ID = 2, PD_ISSUED = 3, PD_ISSUES = 4 };
enum { CK_COC = 1 };

/* ------------------------------------------------------------------ */
/* In-memory forms                                                      */
/* ------------------------------------------------------------------ */

typedef struct Pending {
    uint8_t dsn[PROTO_DSN];
    uint8_t codeId[PROTO_CODE_ID];
    uint64_t issued;			/* time of the latest code */
    uint64_t issues;			/* codes given under it */
} Pending;

typedef struct Ticket {
    uint8_t id[PROTO_TICKET_ID];
    int ended;
    uint8_t requestDigest[PROTO_DIGEST];
    char *name, *device, *action, *jobName, *taskName;
    int64_t maxDevices, completed;
    uint64_t loaded;
    ProtoTicketSecret *secret;		/* live tickets only */
    size_t nPending;
    Pending *pending;
    size_t nTail;
    ProtoCoc *tail;			/* CoCs not yet in a chunk */
    uint64_t chunks;			/* chunk blobs written */
    char *endType;			/* ended tickets */
    uint64_t removed;
    int64_t endPending;
    uint8_t endSig[PROTO_P384_SIG];
} Ticket;

typedef struct ServedTicket {
    uint8_t id[PROTO_TICKET_ID];
    char *name, *device, *action;
    int64_t maxDevices;
} ServedTicket;

typedef struct Served {
    uint8_t digest[PROTO_DIGEST];
    char *jobName, *taskName;
    char uhsmUuid[41];
    uint8_t uhsmFp[PROTO_DIGEST];
    uint8_t nonce[PROTO_NONCE];
    size_t nTickets;
    ServedTicket *tickets;
    uint64_t served, sequence;
} Served;

/* A device session: from the challenge to the code. */
typedef enum { SS_FREE = 0, SS_CHALLENGED, SS_AUTHENTICATED } SessionState;

typedef struct Session {
    SessionState state;
    uint64_t age;			/* for forgetting the oldest */
    uint8_t challenge[PROTO_NONCE];
    RoleMhsmDevice device;
    uint8_t kfp[PROTO_P384_PUB];	/* hasKfp: the certified KFP */
    uint8_t d[PROTO_P384_PUB];		/* hasKfp: the session key D */
} Session;

struct RoleMhsm {
    RoleHsm *hsm;
    hsm_hdl_t keyStore;
    RoleKey signKey, encKey;
    char uuid[41];
    int kind;
    ProtoCert cert;
    uint8_t certFp[PROTO_DIGEST];
    uint8_t root[PROTO_P384_PUB];
    uint64_t clock;
    Session sessions[ROLE_MHSM_MAX_SESSIONS];
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

static const char *const failNames[] = {
    "", "FAIL", "CORRUPT", "WRONG_HSM", "REPLAYED", "UNKNOWN_REQUEST",
    "ENDED", "EXHAUSTED", "NOT_LOADED", "AUTH", "DIE", "KEY_MODE", "COC",
    "INCOMPLETE", "UUID", "NOT_PROVISIONED"
};

/*
 * role_mhsm_fail_name --
 *	The word of a RoleMhsmFail for error codes ("EXHAUSTED"); FAIL for
 *	anything else.
 */
const char *
role_mhsm_fail_name(int fail)
{
    if (fail >= 0 || -fail >= (int) (sizeof(failNames) / sizeof(*failNames))) {
	return "FAIL";
    }
    return failNames[-fail];
}

/* Fails with a condition and a sentence. */
static int
Fail(ProtoError *err, int fail, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(printf, 3, 4)))
#endif
	;
static int
Fail(ProtoError *err, int fail, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
    }
    return fail;
}

/* An HSM failure, as role_hsm_error says it. */
static int
HsmFail(ProtoError *err, const char *what, hsm_err_t code)
{
    role_hsm_error(err, what, code);
    return ROLE_MHSM_FAIL;
}

/*
 * Dup --
 *	A malloc'ed copy of a string (NULL stays NULL): the proto
 *	structures own malloc'ed text.
 */
static char *
Dup(const char *s)
{
    char *d;
    size_t n;

    if (s == NULL) {
	return NULL;
    }
    n = strlen(s) + 1;
    if ((d = malloc(n)) != NULL) {
	memcpy(d, s, n);
    }
    return d;
}

/*
 * Now --
 *	Seconds since 1970, for the records' times.
 */
static uint64_t
Now(void)
{
    return (uint64_t) time(NULL);
}

/*
 * TicketBlobName --
 *	The blob name of a ticket record: "mhsm.t." and the id's 40 hex
 *	digits.
 */
static void
TicketBlobName(const uint8_t id[PROTO_TICKET_ID], char name[64])
{
    char hex[2 * PROTO_TICKET_ID + 1];

    proto_hex(id, PROTO_TICKET_ID, hex);
    snprintf(name, 64, "mhsm.t.%s", hex);
}

/* Chunk names stay within the engine's 64 characters up to 10^16 chunks. */
#define CHUNK_NAME 80

/*
 * ChunkBlobName --
 *	The blob name of a ticket's n-th CoC record.
 */
static void
ChunkBlobName(const uint8_t id[PROTO_TICKET_ID], uint64_t n,
	char name[CHUNK_NAME])
{
    char hex[2 * PROTO_TICKET_ID + 1];

    proto_hex(id, PROTO_TICKET_ID, hex);
    snprintf(name, CHUNK_NAME, "mhsm.c.%s.%llu", hex, (unsigned long long) n);
}

/*
 * RequestBlobName --
 *	The blob name of a served request: "mhsm.r." and the first 20
 *	bytes of its digest in hex (160 bits: collisions are not a
 *	concern; the full digest is checked inside).
 */
static void
RequestBlobName(const uint8_t digest[PROTO_DIGEST], char name[64])
{
    char hex[41];

    proto_hex(digest, 20, hex);
    snprintf(name, 64, "mhsm.r.%s", hex);
}

/* Ticket ids as shown to users: 40 hex digits. */
static const char *
IdText(const uint8_t id[PROTO_TICKET_ID], char buf[2 * PROTO_TICKET_ID + 1])
{
    proto_hex(id, PROTO_TICKET_ID, buf);
    return buf;
}

/*
 * Random --
 *	Random bytes from the HSM's own generator (ticket ids, nonces,
 *	challenges, code ids).
 */
static int
Random(RoleMhsm *m, uint8_t *out, size_t len, ProtoError *err)
{
    return role_random(m->hsm, out, len, err) == 0 ? 0 : ROLE_MHSM_FAIL;
}

/*
 * Transactions --
 *	RunTxn runs fn inside hsm_fw_transaction: fn returns 0 or a
 *	RoleMhsmFail (with err filled), which RunTxn returns.
 */
typedef int (*TxnFn)(RoleMhsm *m, void *data, ProtoError *err);

typedef struct Txn {
    RoleMhsm *m;
    RoleHsm *hsm;
    TxnFn fn;
    void *data;
    int result;
    ProtoError *err;
} Txn;

/*
 * TxnTrampoline --
 *	Runs a TxnFn inside hsm_fw_transaction and keeps its result, so
 *	that a refusal (not an engine failure) reaches the caller with its
 *	condition.
 */
static hsm_err_t
TxnTrampoline(hsm_hdl_t session, void *ctx)
{
    Txn *t = ctx;

    (void) session;
    t->result = t->fn(t->m, t->data, t->err);
    return t->result == 0 ? HSM_NO_ERROR : HSM_GENERAL_ERROR;
}

/*
 * RunTxn --
 *	Runs fn holding the HSM's lock, with a fresh view of its NVM:
 *	every read-modify-write of M-HSM records goes through here, so
 *	processes sharing the M-HSM are serialised.
 */
static int
RunTxn(RoleHsm *hsm, RoleMhsm *m, TxnFn fn, void *data, ProtoError *err)
{
    Txn t;
    hsm_err_t rc;

    t.m = m;
    t.hsm = hsm;
    t.fn = fn;
    t.data = data;
    t.result = ROLE_MHSM_FAIL;
    t.err = err;
    rc = hsm_fw_transaction(hsm->session, TxnTrampoline, &t);
    if (t.result != 0) {
	return t.result;
    }
    if (rc != HSM_NO_ERROR) {
	return HsmFail(err, "M-HSM transaction", rc);
    }
    return 0;
}

/* Reads a blob: 1 found, 0 absent, or a fail. */
static int
ReadBlob(RoleHsm *hsm, const char *name, uint8_t **data, size_t *len,
	ProtoError *err)
{
    int found = 0;

    *data = NULL;
    *len = 0;
    if (role_blob_read(hsm, name, data, len, &found, err) != 0) {
	return ROLE_MHSM_FAIL;
    }
    return found;
}

/*
 * WriteBuf --
 *	Writes an encoded record as a blob (durable and rollback-protected
 *	when it returns); refuses a buffer whose encoding ran out of
 *	memory.
 */
static int
WriteBuf(RoleHsm *hsm, const char *name, ProtoBuf *b, ProtoError *err)
{
    if (b->failed) {
	return Fail(err, ROLE_MHSM_FAIL, "M-HSM record %s: no memory", name);
    }
    if (role_blob_write(hsm, name, b->data, b->len, err) != 0) {
	return ROLE_MHSM_FAIL;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Records                                                              */
/* ------------------------------------------------------------------ */

/*
 * Rd --
 *	A record being read, with the public TLV reader of proto.h: each
 *	getter finds its field, checks its size or form, and on failure
 *	says which record and field ("M-HSM ticket record: field 'max' ...").
 *	The records are the HSM's own (authenticated by the engine), so a
 *	failure means damage or a bug, never input to trust.
 */
typedef struct Rd {
    const uint8_t *data;
    size_t len;
    const char *what;
    ProtoError *err;
} Rd;

/*
 * RdFail --
 *	A damaged-record refusal naming the record and the field.
 */
static int
RdFail(const Rd *r, const char *field, const char *problem)
{
    return Fail(r->err, ROLE_MHSM_CORRUPT, "%s: field '%s' %s", r->what,
	    field, problem);
}

/* 1 found, 0 absent (optional only), or ROLE_MHSM_CORRUPT. */
static int
RdItem(const Rd *r, uint16_t tag, const char *field, int optional,
	ProtoItem *item)
{
    int rc = proto_find(r->data, r->len, tag, item);

    if (rc < 0) {
	return RdFail(r, field, "is in a malformed record");
    }
    if (rc == 0 && !optional) {
	return RdFail(r, field, "is missing");
    }
    return rc;
}

/*
 * RdU64 --
 *	An unsigned 64-bit field of a record.
 */
static int
RdU64(const Rd *r, uint16_t tag, const char *field, uint64_t *v)
{
    ProtoItem item;
    int rc;

    if ((rc = RdItem(r, tag, field, 0, &item)) < 0) {
	return rc;
    }
    return proto_item_u64(&item, v) == 0 ? 0 : RdFail(r, field, "is not 8 bytes");
}

/*
 * RdI64 --
 *	A signed 64-bit field, at least min.
 */
static int
RdI64(const Rd *r, uint16_t tag, const char *field, int64_t min, int64_t *v)
{
    ProtoItem item;
    int rc;

    if ((rc = RdItem(r, tag, field, 0, &item)) < 0) {
	return rc;
    }
    if (proto_item_i64(&item, v) != 0) {
	return RdFail(r, field, "is not 8 bytes");
    }
    return *v >= min ? 0 : RdFail(r, field, "is out of range");
}

/*
 * RdFixed --
 *	A field of exactly len bytes.
 */
static int
RdFixed(const Rd *r, uint16_t tag, const char *field, void *out, size_t len)
{
    ProtoItem item;
    int rc;

    if ((rc = RdItem(r, tag, field, 0, &item)) < 0) {
	return rc;
    }
    return proto_item_fixed(&item, out, len) == 0 ? 0
	    : RdFail(r, field, "has the wrong size");
}

/*
 * RdStr --
 *	A text field (malloc'ed).
 */
static int
RdStr(const Rd *r, uint16_t tag, const char *field, char **out)
{
    ProtoItem item;
    int rc;

    *out = NULL;
    if ((rc = RdItem(r, tag, field, 0, &item)) < 0) {
	return rc;
    }
    return proto_item_str(&item, out) == 0 ? 0
	    : RdFail(r, field, "is not text");
}

/* A string that must be one of PROGRAM VERIFY ERASE (or end types). */
static int
RdWord(const Rd *r, uint16_t tag, const char *field, const char *const *words,
	char **out)
{
    int i, rc;

    if ((rc = RdStr(r, tag, field, out)) < 0) {
	return rc;
    }
    for (i = 0; words[i] != NULL; i++) {
	if (strcmp(*out, words[i]) == 0) {
	    return 0;
	}
    }
    free(*out);
    *out = NULL;
    return RdFail(r, field, "is not a value this version knows");
}

/*
 * RdUuid --
 *	A field holding a UUID in canonical form.
 */
static int
RdUuid(const Rd *r, uint16_t tag, const char *field, char out[41])
{
    char *s, canon[41];
    int rc;

    if ((rc = RdStr(r, tag, field, &s)) < 0) {
	return rc;
    }
    rc = proto_uuid_canon(s, canon, NULL) == 0 && strcmp(s, canon) == 0;
    free(s);
    if (!rc) {
	return RdFail(r, field, "is not a canonical UUID");
    }
    memcpy(out, canon, sizeof(canon));
    return 0;
}

/*
 * RdCert --
 *	A certificate field.
 */
static int
RdCert(const Rd *r, uint16_t tag, const char *field, ProtoCert *cert)
{
    ProtoItem item;
    int rc;

    if ((rc = RdItem(r, tag, field, 0, &item)) < 0) {
	return rc;
    }
    return proto_cert_get(&item, cert, r->err) == 0 ? 0
	    : RdFail(r, field, "is not a certificate");
}

/* The number of items with tag (at most max). */
static int
RdCount(const Rd *r, uint16_t tag, const char *field, size_t max, size_t *n)
{
    ProtoReader rd;
    ProtoItem item;
    int rc;

    *n = 0;
    proto_reader_init(&rd, r->data, r->len);
    while ((rc = proto_next(&rd, &item)) == 1) {
	if (item.tag == tag && ++*n > max) {
	    return RdFail(r, field, "is repeated too often");
	}
    }
    return rc == 0 ? 0 : RdFail(r, field, "is in a malformed record");
}

/* The next item with tag (after RdCount checked the record). */
static int
RdNext(ProtoReader *rd, uint16_t tag, ProtoItem *item)
{
    while (proto_next(rd, item) == 1) {
	if (item->tag == tag) {
	    return 1;
	}
    }
    return 0;
}

static const char *const actions[] = {"PROGRAM", "VERIFY", "ERASE", NULL};
static const char *const endTypes[] = {"COMPLETED", "TERMINATED", NULL};

/*
 * Identity --
 *	The identity record, decoded.  The DFK-DB key is read only where it
 *	is used (IdentityDfk) and cleansed there.
 */
typedef struct Identity {
    char uuid[41];
    int kind;
    uint32_t signId, encId;
    ProtoCert cert;
    uint8_t root[PROTO_P384_PUB];
    uint64_t created;
} Identity;

/*
 * IdentityDecode --
 *	Decodes the identity record; the DFK-DB key only when dfk is given
 *	(it is read where used and cleansed there).
 */
static int
IdentityDecode(const uint8_t *data, size_t len, Identity *id, uint8_t *dfk,
	ProtoError *err)
{
    Rd r = {data, len, "M-HSM identity record", err};
    uint64_t version, kind, signId, encId;
    int rc;

    memset(id, 0, sizeof(*id));
    if ((rc = RdU64(&r, ID_VERSION, "version", &version)) < 0
	    || (rc = RdUuid(&r, ID_UUID, "uuid", id->uuid)) < 0
	    || (rc = RdU64(&r, ID_KIND, "kind", &kind)) < 0
	    || (rc = RdU64(&r, ID_SIGN_KEY, "signing key", &signId)) < 0
	    || (rc = RdU64(&r, ID_ENC_KEY, "sealing key", &encId)) < 0
	    || (rc = RdCert(&r, ID_CERT, "certificate", &id->cert)) < 0
	    || (rc = RdFixed(&r, ID_ROOT, "root", id->root, PROTO_P384_PUB)) < 0
	    || (rc = RdU64(&r, ID_CREATED, "created", &id->created)) < 0
	    || (dfk != NULL && (rc = RdFixed(&r, ID_DFK, "DFK-DB key", dfk,
		    PROTO_KEY)) < 0)) {
	return rc;
    }
    if (version != RECORD_VERSION || kind > 1 || signId > UINT32_MAX
	    || encId > UINT32_MAX) {
	return Fail(err, ROLE_MHSM_CORRUPT, "M-HSM identity record: version "
		"%llu, kind %llu: not a record this version reads",
		(unsigned long long) version, (unsigned long long) kind);
    }
    id->kind = (int) kind;
    id->signId = (uint32_t) signId;
    id->encId = (uint32_t) encId;
    return 0;
}

/* Reads the identity record: 1, 0 if there is none, or a fail. */
static int
IdentityRead(RoleHsm *hsm, Identity *id, uint8_t *dfk, ProtoError *err)
{
    uint8_t *data;
    size_t len;
    int rc;

    if ((rc = ReadBlob(hsm, IDENTITY_BLOB, &data, &len, err)) <= 0) {
	return rc;
    }
    rc = IdentityDecode(data, len, id, dfk, err);
    proto_clear_free(data, len);
    return rc == 0 ? 1 : rc;
}

/*
 * ServedFree --
 *	Frees a served-request record's members.
 */
static void
ServedFree(Served *s)
{
    size_t i;

    free(s->jobName);
    free(s->taskName);
    for (i = 0; i < s->nTickets; i++) {
	free(s->tickets[i].name);
	free(s->tickets[i].device);
	free(s->tickets[i].action);
    }
    free(s->tickets);
    memset(s, 0, sizeof(*s));
}

/*
 * ServedEncode --
 *	Encodes a served-request record (docs/FORMATS.md, "M-HSM
 *	records").
 */
static int
ServedEncode(const Served *s, ProtoBuf *b)
{
    size_t i, mark;

    proto_put_u64(b, RQ_VERSION, RECORD_VERSION);
    proto_put_bytes(b, RQ_DIGEST, s->digest, PROTO_DIGEST);
    proto_put_str(b, RQ_JOB, s->jobName);
    proto_put_str(b, RQ_TASK, s->taskName);
    proto_put_str(b, RQ_UHSM, s->uhsmUuid);
    proto_put_bytes(b, RQ_UHSM_FP, s->uhsmFp, PROTO_DIGEST);
    proto_put_bytes(b, RQ_NONCE, s->nonce, PROTO_NONCE);
    for (i = 0; i < s->nTickets; i++) {
	mark = proto_begin(b, RQ_TICKET);
	proto_put_bytes(b, RT_ID, s->tickets[i].id, PROTO_TICKET_ID);
	proto_put_str(b, RT_NAME, s->tickets[i].name);
	proto_put_str(b, RT_DEVICE, s->tickets[i].device);
	proto_put_str(b, RT_ACTION, s->tickets[i].action);
	proto_put_i64(b, RT_MAX, s->tickets[i].maxDevices);
	proto_end(b, mark);
    }
    proto_put_u64(b, RQ_SERVED, s->served);
    proto_put_u64(b, RQ_SEQUENCE, s->sequence);
    return b->failed ? -1 : 0;
}

/*
 * ServedDecode --
 *	Decodes a served-request record, refusing a damaged one.
 */
static int
ServedDecode(const uint8_t *data, size_t len, Served *s, ProtoError *err)
{
    Rd r = {data, len, "M-HSM served request record", err};
    ProtoReader rd;
    ProtoItem item;
    uint64_t version;
    size_t n, i;
    int rc;

    memset(s, 0, sizeof(*s));
    if ((rc = RdU64(&r, RQ_VERSION, "version", &version)) < 0
	    || (rc = RdFixed(&r, RQ_DIGEST, "digest", s->digest,
		    PROTO_DIGEST)) < 0
	    || (rc = RdStr(&r, RQ_JOB, "job", &s->jobName)) < 0
	    || (rc = RdStr(&r, RQ_TASK, "task", &s->taskName)) < 0
	    || (rc = RdUuid(&r, RQ_UHSM, "U-HSM", s->uhsmUuid)) < 0
	    || (rc = RdFixed(&r, RQ_UHSM_FP, "U-HSM certificate", s->uhsmFp,
		    PROTO_DIGEST)) < 0
	    || (rc = RdFixed(&r, RQ_NONCE, "binding nonce", s->nonce,
		    PROTO_NONCE)) < 0
	    || (rc = RdU64(&r, RQ_SERVED, "served", &s->served)) < 0
	    || (rc = RdU64(&r, RQ_SEQUENCE, "sequence", &s->sequence)) < 0
	    || (rc = RdCount(&r, RQ_TICKET, "ticket", MAX_TICKETS, &n)) < 0) {
	goto error;
    }
    if (version != RECORD_VERSION) {
	rc = RdFail(&r, "version", "is not one this version reads");
	goto error;
    }
    if (n > 0 && (s->tickets = calloc(n, sizeof(*s->tickets))) == NULL) {
	rc = Fail(err, ROLE_MHSM_FAIL, "no memory");
	goto error;
    }
    proto_reader_init(&rd, data, len);
    for (i = 0; i < n && RdNext(&rd, RQ_TICKET, &item); i++) {
	ServedTicket *t = &s->tickets[i];
	Rd sub = {item.val, item.len, "M-HSM served request record: ticket",
		err};

	s->nTickets = i + 1;
	if ((rc = RdFixed(&sub, RT_ID, "id", t->id, PROTO_TICKET_ID)) < 0
		|| (rc = RdStr(&sub, RT_NAME, "name", &t->name)) < 0
		|| (rc = RdStr(&sub, RT_DEVICE, "device", &t->device)) < 0
		|| (rc = RdWord(&sub, RT_ACTION, "action", actions,
			&t->action)) < 0
		|| (rc = RdI64(&sub, RT_MAX, "max devices", PROTO_UNLIMITED,
			&t->maxDevices)) < 0) {
	    goto error;
	}
    }
    return 0;
  error:
    ServedFree(s);
    return rc;
}

/*
 * ServedRead --
 *	Reads the record of the request of that digest: 1, 0 if this M-HSM
 *	never served it, or a fail.
 */
static int
ServedRead(RoleHsm *hsm, const uint8_t digest[PROTO_DIGEST], Served *s,
	ProtoError *err)
{
    char name[64];
    uint8_t *data;
    size_t len;
    int rc;

    RequestBlobName(digest, name);
    if ((rc = ReadBlob(hsm, name, &data, &len, err)) <= 0) {
	return rc;
    }
    rc = ServedDecode(data, len, s, err);
    free(data);
    if (rc == 0 && CRYPTO_memcmp(s->digest, digest, PROTO_DIGEST) != 0) {
	ServedFree(s);
	return Fail(err, ROLE_MHSM_CORRUPT, "M-HSM record %s names another "
		"request", name);
    }
    return rc == 0 ? 1 : rc;
}

/*
 * ServedWrite --
 *	Writes a served-request record.
 */
static int
ServedWrite(RoleHsm *hsm, const Served *s, ProtoError *err)
{
    char name[64];
    ProtoBuf b;
    int rc;

    RequestBlobName(s->digest, name);
    proto_buf_init(&b);
    ServedEncode(s, &b);
    rc = WriteBuf(hsm, name, &b, err);
    proto_buf_free(&b);
    return rc;
}

/*
 * PutCoc --
 *	A CoC as an item of a record.  (proto_coc_encode checks the whole
 *	buffer it wrote into, so each CoC is encoded on its own first.)
 */
static void
PutCoc(ProtoBuf *b, uint16_t tag, const ProtoCoc *coc)
{
    ProtoBuf one;

    proto_buf_init(&one);
    if (proto_coc_encode(coc, &one) != 0) {
	b->failed = 1;
    } else {
	proto_put_bytes(b, tag, one.data, one.len);
    }
    proto_buf_free(&one);
}

/*
 * TicketFree --
 *	Frees a ticket record's members (its secret is cleansed by
 *	proto_ticket_secrets_free).
 */
static void
TicketFree(Ticket *t)
{
    size_t i;

    free(t->name);
    free(t->device);
    free(t->action);
    free(t->jobName);
    free(t->taskName);
    free(t->endType);
    if (t->secret != NULL) {
	proto_ticket_secrets_free(t->secret, 1);
    }
    free(t->pending);
    for (i = 0; i < t->nTail; i++) {
	proto_coc_free(&t->tail[i]);
    }
    free(t->tail);
    memset(t, 0, sizeof(*t));
}

/*
 * TicketEncode --
 *	Encodes a ticket record; the secret only while the ticket is live,
 *	the certifier only once it ended.
 */
static int
TicketEncode(const Ticket *t, ProtoBuf *b)
{
    ProtoBuf sec;
    size_t i, mark;

    proto_put_u64(b, TK_VERSION, RECORD_VERSION);
    proto_put_bytes(b, TK_ID, t->id, PROTO_TICKET_ID);
    proto_put_u64(b, TK_ENDED, (uint64_t) t->ended);
    proto_put_bytes(b, TK_REQUEST, t->requestDigest, PROTO_DIGEST);
    proto_put_str(b, TK_NAME, t->name);
    proto_put_str(b, TK_DEVICE, t->device);
    proto_put_str(b, TK_ACTION, t->action);
    proto_put_i64(b, TK_MAX, t->maxDevices);
    proto_put_i64(b, TK_COMPLETED, t->completed);
    proto_put_str(b, TK_JOB, t->jobName);
    proto_put_str(b, TK_TASK, t->taskName);
    proto_put_u64(b, TK_LOADED, t->loaded);
    if (!t->ended && t->secret != NULL) {
	proto_buf_init(&sec);
	if (proto_ticket_secrets_encode(t->secret, 1, &sec) != 0) {
	    b->failed = 1;
	}
	proto_put_bytes(b, TK_SECRET, sec.data, sec.len);
	proto_buf_free(&sec);
    }
    for (i = 0; i < t->nPending; i++) {
	mark = proto_begin(b, TK_PENDING);
	proto_put_bytes(b, PD_DSN, t->pending[i].dsn, PROTO_DSN);
	proto_put_bytes(b, PD_CODE_ID, t->pending[i].codeId, PROTO_CODE_ID);
	proto_put_u64(b, PD_ISSUED, t->pending[i].issued);
	proto_put_u64(b, PD_ISSUES, t->pending[i].issues);
	proto_end(b, mark);
    }
    for (i = 0; i < t->nTail; i++) {
	PutCoc(b, TK_COC, &t->tail[i]);
    }
    proto_put_u64(b, TK_CHUNKS, t->chunks);
    if (t->ended) {
	proto_put_str(b, TK_END_TYPE, t->endType);
	proto_put_u64(b, TK_REMOVED, t->removed);
	proto_put_i64(b, TK_END_PENDING, t->endPending);
	proto_put_bytes(b, TK_END_SIG, t->endSig, PROTO_P384_SIG);
    }
    return b->failed ? -1 : 0;
}

/* Decodes the CoCs of a record (tail or chunk) into *cocs. */
static int
CocsDecode(const Rd *r, uint16_t tag, ProtoCoc **cocs, size_t *n)
{
    ProtoReader rd;
    ProtoItem item;
    ProtoError why;
    size_t count, i;
    int rc;

    *cocs = NULL;
    *n = 0;
    if ((rc = RdCount(r, tag, "CoC", CHUNK, &count)) < 0) {
	return rc;
    }
    if (count > 0 && (*cocs = calloc(count, sizeof(**cocs))) == NULL) {
	return Fail(r->err, ROLE_MHSM_FAIL, "no memory");
    }
    proto_reader_init(&rd, r->data, r->len);
    for (i = 0; i < count && RdNext(&rd, tag, &item); i++) {
	if (proto_coc_decode(item.val, item.len, &(*cocs)[i], &why) != 0) {
	    while (i-- > 0) {
		proto_coc_free(&(*cocs)[i]);
	    }
	    free(*cocs);
	    *cocs = NULL;
	    return Fail(r->err, ROLE_MHSM_CORRUPT, "%s: %s", r->what, why.msg);
	}
    }
    *n = count;
    return 0;
}

/*
 * TicketDecode --
 *	Decodes a ticket record, refusing a damaged one (and a live one
 *	whose secret is not its own).
 */
static int
TicketDecode(const uint8_t *data, size_t len, Ticket *t, ProtoError *err)
{
    Rd r = {data, len, "M-HSM ticket record", err};
    ProtoReader rd;
    ProtoItem item;
    ProtoError why;
    uint64_t version, ended;
    size_t n, i, nSecret = 0;
    int rc;

    memset(t, 0, sizeof(*t));
    if ((rc = RdU64(&r, TK_VERSION, "version", &version)) < 0
	    || (rc = RdFixed(&r, TK_ID, "id", t->id, PROTO_TICKET_ID)) < 0
	    || (rc = RdU64(&r, TK_ENDED, "ended", &ended)) < 0
	    || (rc = RdFixed(&r, TK_REQUEST, "request", t->requestDigest,
		    PROTO_DIGEST)) < 0
	    || (rc = RdStr(&r, TK_NAME, "name", &t->name)) < 0
	    || (rc = RdStr(&r, TK_DEVICE, "device", &t->device)) < 0
	    || (rc = RdWord(&r, TK_ACTION, "action", actions, &t->action)) < 0
	    || (rc = RdI64(&r, TK_MAX, "max devices", PROTO_UNLIMITED,
		    &t->maxDevices)) < 0
	    || (rc = RdI64(&r, TK_COMPLETED, "completed", 0, &t->completed)) < 0
	    || (rc = RdStr(&r, TK_JOB, "job", &t->jobName)) < 0
	    || (rc = RdStr(&r, TK_TASK, "task", &t->taskName)) < 0
	    || (rc = RdU64(&r, TK_LOADED, "loaded", &t->loaded)) < 0
	    || (rc = RdU64(&r, TK_CHUNKS, "chunks", &t->chunks)) < 0
	    || (rc = RdCount(&r, TK_PENDING, "reservation", MAX_PENDING,
		    &n)) < 0) {
	goto error;
    }
    if (version != RECORD_VERSION || ended > 1 || t->maxDevices == 0) {
	rc = RdFail(&r, "version", "is not one this version reads");
	goto error;
    }
    t->ended = (int) ended;
    if (n > 0 && (t->pending = calloc(n, sizeof(*t->pending))) == NULL) {
	rc = Fail(err, ROLE_MHSM_FAIL, "no memory");
	goto error;
    }
    proto_reader_init(&rd, data, len);
    for (i = 0; i < n && RdNext(&rd, TK_PENDING, &item); i++) {
	Pending *p = &t->pending[i];
	Rd sub = {item.val, item.len, "M-HSM ticket record: reservation", err};

	t->nPending = i + 1;
	if ((rc = RdFixed(&sub, PD_DSN, "dsn", p->dsn, PROTO_DSN)) < 0
		|| (rc = RdFixed(&sub, PD_CODE_ID, "code id", p->codeId,
			PROTO_CODE_ID)) < 0
		|| (rc = RdU64(&sub, PD_ISSUED, "issued", &p->issued)) < 0
		|| (rc = RdU64(&sub, PD_ISSUES, "issues", &p->issues)) < 0) {
	    goto error;
	}
    }
    if ((rc = CocsDecode(&r, TK_COC, &t->tail, &t->nTail)) < 0) {
	goto error;
    }
    if (!t->ended) {
	if ((rc = RdItem(&r, TK_SECRET, "secret", 0, &item)) < 0) {
	    goto error;
	}
	if (proto_ticket_secrets_decode(item.val, item.len, &t->secret,
		&nSecret, &why) != 0 || nSecret != 1
		|| memcmp(t->secret->id, t->id, PROTO_TICKET_ID) != 0) {
	    if (t->secret != NULL) {
		proto_ticket_secrets_free(t->secret, nSecret);
		t->secret = NULL;
	    }
	    rc = RdFail(&r, "secret", "is not the secret of this ticket");
	    goto error;
	}
    } else if ((rc = RdWord(&r, TK_END_TYPE, "end type", endTypes,
	    &t->endType)) < 0
	    || (rc = RdU64(&r, TK_REMOVED, "removed", &t->removed)) < 0
	    || (rc = RdI64(&r, TK_END_PENDING, "end pending", 0,
		    &t->endPending)) < 0
	    || (rc = RdFixed(&r, TK_END_SIG, "certifier signature", t->endSig,
		    PROTO_P384_SIG)) < 0) {
	goto error;
    }
    return 0;
  error:
    TicketFree(t);
    return rc;
}

/* Reads a ticket record: 1, 0 if the M-HSM does not hold it, or a fail. */
static int
TicketRead(RoleHsm *hsm, const uint8_t id[PROTO_TICKET_ID], Ticket *t,
	ProtoError *err)
{
    char name[64];
    uint8_t *data;
    size_t len;
    int rc;

    memset(t, 0, sizeof(*t));
    TicketBlobName(id, name);
    if ((rc = ReadBlob(hsm, name, &data, &len, err)) <= 0) {
	return rc;
    }
    rc = TicketDecode(data, len, t, err);
    proto_clear_free(data, len);
    if (rc == 0 && memcmp(t->id, id, PROTO_TICKET_ID) != 0) {
	TicketFree(t);
	return Fail(err, ROLE_MHSM_CORRUPT, "M-HSM record %s holds another "
		"ticket", name);
    }
    return rc == 0 ? 1 : rc;
}

/*
 * TicketWrite --
 *	Writes a ticket record.
 */
static int
TicketWrite(RoleHsm *hsm, const Ticket *t, ProtoError *err)
{
    char name[64];
    ProtoBuf b;
    int rc;

    TicketBlobName(t->id, name);
    proto_buf_init(&b);
    TicketEncode(t, &b);
    rc = WriteBuf(hsm, name, &b, err);
    proto_buf_free(&b);
    return rc;
}

/*
 * FlushTail --
 *	Moves a full tail of CoCs into chunk blob number t->chunks, then
 *	rewrites the ticket with an empty tail.  A crash between the two
 *	leaves the chunk uncounted and the tail full: the next flush writes
 *	the same chunk again.  Readers only count chunks below t->chunks.
 */
static int
FlushTail(RoleHsm *hsm, Ticket *t, ProtoError *err)
{
    char name[CHUNK_NAME];
    ProtoBuf b;
    size_t i;
    int rc;

    if (t->nTail < CHUNK) {
	return 0;
    }
    ChunkBlobName(t->id, t->chunks, name);
    proto_buf_init(&b);
    for (i = 0; i < t->nTail; i++) {
	PutCoc(&b, CK_COC, &t->tail[i]);
    }
    rc = WriteBuf(hsm, name, &b, err);
    proto_buf_free(&b);
    if (rc != 0) {
	return rc;
    }
    for (i = 0; i < t->nTail; i++) {
	proto_coc_free(&t->tail[i]);
    }
    t->nTail = 0;
    t->chunks++;
    return TicketWrite(hsm, t, err);
}

/* Appends the CoCs of a ticket (chunks, then tail) to *cocs. */
static int
TicketCocs(RoleHsm *hsm, const Ticket *t, ProtoCoc **cocs, size_t *n,
	ProtoError *err)
{
    uint64_t c;
    size_t i;

    for (c = 0; c <= t->chunks; c++) {
	ProtoCoc *part = NULL, *grown;
	size_t nPart = 0;

	if (c < t->chunks) {
	    char name[CHUNK_NAME];
	    uint8_t *data;
	    size_t len;
	    Rd rec;
	    int rc;

	    ChunkBlobName(t->id, c, name);
	    if ((rc = ReadBlob(hsm, name, &data, &len, err)) < 0) {
		return rc;
	    }
	    if (rc == 0) {
		return Fail(err, ROLE_MHSM_CORRUPT, "M-HSM record %s is "
			"missing", name);
	    }
	    rec.data = data;
	    rec.len = len;
	    rec.what = "M-HSM CoC record";
	    rec.err = err;
	    rc = CocsDecode(&rec, CK_COC, &part, &nPart);
	    free(data);
	    if (rc < 0) {
		return rc;
	    }
	} else {
	    part = t->tail;
	    nPart = t->nTail;
	}
	if (nPart > 0) {
	    if ((grown = realloc(*cocs, (*n + nPart) * sizeof(**cocs))) == NULL) {
		if (part != t->tail) {
		    for (i = 0; i < nPart; i++) {
			proto_coc_free(&part[i]);
		    }
		    free(part);
		}
		return Fail(err, ROLE_MHSM_FAIL, "no memory for CoCs");
	    }
	    *cocs = grown;
	    for (i = 0; i < nPart; i++) {
		(*cocs)[*n + i] = part[i];
		if (part == t->tail) {
		    (*cocs)[*n + i].action = Dup(part[i].action);
		}
	    }
	    *n += nPart;
	}
	if (part != t->tail) {
	    free(part);
	}
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Provisioning and opening                                             */
/* ------------------------------------------------------------------ */

typedef struct ProvisionCtx {
    RoleHsm *hsm;
    char uuid[41];
    int kind;
    const RoleMhsmVendor *vendor;
    int created;
} ProvisionCtx;

/*
 * KindName --
 *	How an M-HSM kind reads in messages.
 */
static const char *
KindName(int kind)
{
    return kind == ROLE_MHSM_KIND_UHSM_FUNCTION
	    ? "the M-HSM function of a U-HSM" : "a Manufacturer HSM";
}

/*
 * MakeIdentity --
 *	Generates the identity and sealing keys in key store ks, has them
 *	certified, unseals the DFK-DB key the vendor sends, and writes the
 *	identity record.
 */
static int
MakeIdentity(ProvisionCtx *p, hsm_hdl_t ks, ProtoError *err)
{
    ProtoCert cert;
    RoleKey encKey;
    uint8_t *sealed = NULL, *dfk = NULL;
    size_t sealedLen = 0, dfkLen = 0;
    uint32_t signId, encId;
    ProtoBuf b;
    int rc;

    memset(&cert, 0, sizeof(cert));
    cert.kind = PROTO_CERT_MHSM;
    memcpy(cert.subject, p->uuid, strlen(p->uuid) + 1);
    cert.hasEncKey = 1;
    if (role_key_generate(p->hsm, ks, HSM_KEY_TYPE_ECDSA_NIST_P384, &signId,
	    cert.signKey, PROTO_P384_PUB, err) != 0
	    || role_key_generate(p->hsm, ks, HSM_KEY_TYPE_ECDSA_NIST_P384, &encId,
		    cert.encKey, PROTO_P384_PUB, err) != 0
	    || p->vendor->certify(p->vendor->ctx, &cert, err) != 0) {
	return ROLE_MHSM_FAIL;
    }
    if (proto_cert_verify(&cert, PROTO_CERT_MHSM, p->vendor->root, err) != 0
	    || strcmp(cert.subject, p->uuid) != 0) {
	return Fail(err, ROLE_MHSM_CORRUPT, "the vendor's certificate for M-HSM "
		"%s does not verify against the vendor root", p->uuid);
    }
    if (p->vendor->sealDfkKey(p->vendor->ctx, &cert, &sealed, &sealedLen,
	    err) != 0) {
	return ROLE_MHSM_FAIL;
    }
    encKey.hsm = p->hsm;
    encKey.keyStore = ks;
    encKey.keyId = encId;
    rc = proto_open_p384(cert.encKey, "dfk-db", role_ecdh, &encKey, NULL, 0,
	    sealed, sealedLen, &dfk, &dfkLen, err);
    free(sealed);
    if (rc != 0 || dfkLen != PROTO_KEY) {
	if (dfk != NULL) {
	    proto_clear_free(dfk, dfkLen);
	}
	return rc != 0 ? ROLE_MHSM_CORRUPT : Fail(err, ROLE_MHSM_CORRUPT,
		"the DFK-DB key from the vendor is %lu bytes, not %d",
		(unsigned long) dfkLen, PROTO_KEY);
    }
    proto_buf_init(&b);
    proto_put_u64(&b, ID_VERSION, RECORD_VERSION);
    proto_put_str(&b, ID_UUID, p->uuid);
    proto_put_u64(&b, ID_KIND, (uint64_t) p->kind);
    proto_put_u64(&b, ID_SIGN_KEY, signId);
    proto_put_u64(&b, ID_ENC_KEY, encId);
    proto_cert_put(&b, ID_CERT, &cert);
    proto_put_bytes(&b, ID_ROOT, p->vendor->root, PROTO_P384_PUB);
    proto_put_bytes(&b, ID_DFK, dfk, PROTO_KEY);
    proto_put_u64(&b, ID_CREATED, Now());
    proto_clear_free(dfk, dfkLen);
    rc = WriteBuf(p->hsm, IDENTITY_BLOB, &b, err);
    proto_buf_free(&b);
    return rc;
}

/*
 * ProvisionTxn --
 *	Inside the HSM's transaction: if no identity exists, makes one;
 *	else checks it is the one asked for.
 */
static int
ProvisionTxn(RoleMhsm *unused, void *data, ProtoError *err)
{
    ProvisionCtx *p = data;
    Identity id;
    hsm_hdl_t ks;
    int rc;

    (void) unused;
    if ((rc = IdentityRead(p->hsm, &id, NULL, err)) < 0) {
	return rc;
    }
    if (rc == 1) {
	if (strcmp(id.uuid, p->uuid) != 0 || id.kind != p->kind) {
	    return Fail(err, ROLE_MHSM_UUID, "HSM '%s' is M-HSM %s (%s), not "
		    "M-HSM %s (%s)", p->hsm->serverName ? p->hsm->serverName
		    : p->hsm->dir, id.uuid, KindName(id.kind), p->uuid,
		    KindName(p->kind));
	}
	return 0;
    }
    if (role_key_store_open(p->hsm, ROLE_FW_STORE_MHSM, &ks, err) != 0) {
	return ROLE_MHSM_FAIL;
    }
    rc = MakeIdentity(p, ks, err);
    hsm_close_key_store_service(ks);
    if (rc == 0) {
	p->created = 1;
    }
    return rc;
}

/*
 * role_mhsm_provision --
 *	See role_mhsm.h: provisioning runs in one transaction of the HSM,
 *	so two processes setting it up at once make one identity.
 */
int
role_mhsm_provision(RoleHsm *hsm, const char *uuid, int kind,
	const RoleMhsmVendor *vendor, int *created, ProtoError *err)
{
    ProvisionCtx p;
    int rc;

    memset(&p, 0, sizeof(p));
    if (proto_uuid_canon(uuid, p.uuid, err) != 0) {
	return ROLE_MHSM_UUID;
    }
    if (kind != ROLE_MHSM_KIND_STANDALONE && kind != ROLE_MHSM_KIND_UHSM_FUNCTION) {
	return Fail(err, ROLE_MHSM_FAIL, "unknown M-HSM kind %d", kind);
    }
    p.hsm = hsm;
    p.kind = kind;
    p.vendor = vendor;
    rc = RunTxn(hsm, NULL, ProvisionTxn, &p, err);
    if (created != NULL) {
	*created = p.created;
    }
    return rc;
}

/*
 * role_mhsm_provisioned --
 *	Whether the HSM is an M-HSM, and which (role_mhsm.h).
 */
int
role_mhsm_provisioned(RoleHsm *hsm, char uuid[41], int *kind, ProtoError *err)
{
    Identity id;
    int rc;

    if ((rc = IdentityRead(hsm, &id, NULL, err)) != 1) {
	return rc < 0 ? -1 : 0;
    }
    memcpy(uuid, id.uuid, sizeof(id.uuid));
    *kind = id.kind;
    return 1;
}

/*
 * role_mhsm_open --
 *	Opens the M-HSM of a provisioned HSM: its identity record, its key
 *	store and keys (role_mhsm.h).
 */
int
role_mhsm_open(RoleHsm *hsm, const char *uuid, RoleMhsm **out, ProtoError *err)
{
    RoleMhsm *m;
    Identity id;
    char canon[41];
    int rc;

    *out = NULL;
    if (uuid != NULL && proto_uuid_canon(uuid, canon, err) != 0) {
	return ROLE_MHSM_UUID;
    }
    if ((rc = IdentityRead(hsm, &id, NULL, err)) < 0) {
	return rc;
    }
    if (rc == 0) {
	return Fail(err, ROLE_MHSM_NOT_PROVISIONED, "HSM '%s' is not an M-HSM "
		"yet", hsm->serverName ? hsm->serverName : hsm->dir);
    }
    if (uuid != NULL && strcmp(canon, id.uuid) != 0) {
	return Fail(err, ROLE_MHSM_UUID, "HSM '%s' is M-HSM %s, not M-HSM %s",
		hsm->serverName ? hsm->serverName : hsm->dir, id.uuid, canon);
    }
    if ((m = calloc(1, sizeof(*m))) == NULL) {
	return Fail(err, ROLE_MHSM_FAIL, "no memory");
    }
    m->hsm = hsm;
    memcpy(m->uuid, id.uuid, sizeof(m->uuid));
    m->kind = id.kind;
    m->cert = id.cert;
    memcpy(m->root, id.root, PROTO_P384_PUB);
    if (proto_cert_fingerprint(&m->cert, m->certFp) != 0) {
	free(m);
	return Fail(err, ROLE_MHSM_FAIL, "cannot fingerprint the M-HSM "
		"certificate");
    }
    if (role_key_store_open(hsm, ROLE_FW_STORE_MHSM, &m->keyStore, err) != 0) {
	free(m);
	return ROLE_MHSM_FAIL;
    }
    m->signKey.hsm = m->encKey.hsm = hsm;
    m->signKey.keyStore = m->encKey.keyStore = m->keyStore;
    m->signKey.keyId = id.signId;
    m->encKey.keyId = id.encId;
    *out = m;
    return 0;
}

/*
 * role_mhsm_close --
 *	Closes an M-HSM; forgets its sessions.
 */
void
role_mhsm_close(RoleMhsm *m)
{
    if (m == NULL) {
	return;
    }
    hsm_close_key_store_service(m->keyStore);
    OPENSSL_cleanse(m->sessions, sizeof(m->sessions));
    free(m);
}

/*
 * role_mhsm_uuid --
 *	The canonical UUID.
 */
const char *
role_mhsm_uuid(const RoleMhsm *m)
{
    return m->uuid;
}

/*
 * role_mhsm_kind --
 *	Manufacturer HSM, or the M-HSM function of a U-HSM.
 */
int
role_mhsm_kind(const RoleMhsm *m)
{
    return m->kind;
}

/*
 * role_mhsm_cert --
 *	The certificate issued at provisioning.
 */
const ProtoCert *
role_mhsm_cert(const RoleMhsm *m)
{
    return &m->cert;
}

/*
 * role_mhsm_archive_dir --
 *	The folder where ended jobs' statuses are archived.
 */
char *
role_mhsm_archive_dir(const RoleMhsm *m)
{
    return plat_join(m->hsm->dir, "archive");
}

/* Reads the DFK-DB key for one use (cleanse it after). */
static int
DfkKey(RoleMhsm *m, uint8_t dfk[PROTO_KEY], ProtoError *err)
{
    Identity id;
    int rc;

    if ((rc = IdentityRead(m->hsm, &id, dfk, err)) != 1) {
	return rc < 0 ? rc : Fail(err, ROLE_MHSM_CORRUPT, "the M-HSM identity "
		"record is gone");
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Job request -> reply                                                 */
/* ------------------------------------------------------------------ */

typedef struct ServeCtx {
    Served served;
    char name[64];
} ServeCtx;

/*
 * ServeTxn --
 *	Inside the transaction: refuses a request served before, else
 *	draws the ticket ids and binding nonce and records the request
 *	durably (before the reply exists).
 */
static int
ServeTxn(RoleMhsm *m, void *data, ProtoError *err)
{
    ServeCtx *s = data;
    Served old;
    size_t i;
    int rc;

    if ((rc = ServedRead(m->hsm, s->served.digest, &old, err)) < 0) {
	return rc;
    }
    if (rc == 1) {
	char when[32];
	time_t t = (time_t) old.served;
	struct tm tmv;

#ifdef _WIN32
	gmtime_s(&tmv, &t);
#else
	gmtime_r(&t, &tmv);
#endif
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tmv);
	ServedFree(&old);
	return Fail(err, ROLE_MHSM_REPLAYED, "this job request was already "
		"served by M-HSM %s on %s UTC: a request is served once (a "
		"replayed request is refused)", m->uuid, when);
    }
    for (i = 0; i < s->served.nTickets; i++) {
	if ((rc = Random(m, s->served.tickets[i].id, PROTO_TICKET_ID, err)) != 0) {
	    return rc;
	}
    }
    if ((rc = Random(m, s->served.nonce, PROTO_NONCE, err)) != 0) {
	return rc;
    }
    s->served.served = Now();
    return ServedWrite(m->hsm, &s->served, err);
}

/*
 * role_mhsm_serve_request --
 *	Serves a job request (docs/PROTOCOL.md, "Reply"; role_mhsm.h).
 */
int
role_mhsm_serve_request(RoleMhsm *m, const uint8_t *image, size_t len,
	const char *what, uint8_t **replyImage, size_t *replyLen,
	ProtoRequest *reqOut, ProtoReply *replyOut, ProtoError *err)
{
    ProtoRequest req;
    ProtoReply reply;
    ServeCtx s;
    ProtoError why;
    const char *expected;
    size_t i;
    int rc;

    *replyImage = NULL;
    *replyLen = 0;
    memset(&req, 0, sizeof(req));
    memset(&reply, 0, sizeof(reply));
    memset(&s, 0, sizeof(s));
    if (proto_request_read(image, len, what, m->root, &req, s.served.digest,
	    &why) != 0) {
	rc = Fail(err, ROLE_MHSM_CORRUPT, "%s", why.msg);
	goto done;
    }
    expected = req.internal ? req.uhsmUuid : req.mhsmUuid;
    if (strcmp(expected, m->uuid) != 0
	    || (req.internal && m->kind != ROLE_MHSM_KIND_UHSM_FUNCTION)) {
	rc = Fail(err, ROLE_MHSM_WRONG_HSM, "%s is for %s %s, and this HSM "
		"('%s') is M-HSM %s%s", what, req.internal
		? "the M-HSM function of U-HSM" : "M-HSM", expected,
		m->hsm->serverName ? m->hsm->serverName : m->hsm->dir, m->uuid,
		m->kind == ROLE_MHSM_KIND_UHSM_FUNCTION
		? " (the M-HSM function of a U-HSM)" : "");
	goto done;
    }
    if (req.nTickets == 0 || req.nTickets > MAX_TICKETS) {
	rc = Fail(err, ROLE_MHSM_CORRUPT, "%s has %lu tickets: a request needs "
		"1 to %d", what, (unsigned long) req.nTickets, MAX_TICKETS);
	goto done;
    }

    /* Record the served request durably before the reply exists. */
    if (proto_cert_fingerprint(&req.uhsmCert, s.served.uhsmFp) != 0
	    || (s.served.jobName = Dup(req.jobName)) == NULL
	    || (s.served.taskName = Dup(req.taskName)) == NULL
	    || (s.served.tickets = calloc(req.nTickets,
		    sizeof(*s.served.tickets))) == NULL) {
	rc = Fail(err, ROLE_MHSM_FAIL, "%s: no memory", what);
	goto done;
    }
    memcpy(s.served.uhsmUuid, req.uhsmUuid, sizeof(req.uhsmUuid));
    s.served.nTickets = req.nTickets;
    for (i = 0; i < req.nTickets; i++) {
	ServedTicket *t = &s.served.tickets[i];

	t->name = Dup(req.tickets[i].name);
	t->device = Dup(req.tickets[i].device);
	t->action = Dup(req.tickets[i].action);
	t->maxDevices = req.tickets[i].maxDevices;
	if (t->name == NULL || t->device == NULL || t->action == NULL) {
	    rc = Fail(err, ROLE_MHSM_FAIL, "%s: no memory", what);
	    goto done;
	}
    }
    if ((rc = RunTxn(m->hsm, m, ServeTxn, &s, err)) != 0) {
	goto done;
    }

    /* The signed reply. */
    memcpy(reply.requestDigest, s.served.digest, PROTO_DIGEST);
    reply.jobName = s.served.jobName;
    reply.taskName = s.served.taskName;
    memcpy(reply.mhsmUuid, m->uuid, sizeof(m->uuid));
    reply.mhsmCert = m->cert;
    memcpy(reply.bindingNonce, s.served.nonce, PROTO_NONCE);
    reply.created = s.served.served;
    reply.nTickets = s.served.nTickets;
    if ((reply.tickets = calloc(reply.nTickets, sizeof(*reply.tickets))) == NULL) {
	rc = Fail(err, ROLE_MHSM_FAIL, "%s: no memory", what);
	goto done;
    }
    for (i = 0; i < reply.nTickets; i++) {
	reply.tickets[i].name = s.served.tickets[i].name;
	memcpy(reply.tickets[i].id, s.served.tickets[i].id, PROTO_TICKET_ID);
    }
    if (proto_reply_write(&reply, role_sign, &m->signKey, replyImage,
	    replyLen, &why) != 0) {
	rc = Fail(err, ROLE_MHSM_FAIL, "job reply: %s", why.msg);
	goto done;
    }
    if (replyOut != NULL && proto_reply_read(*replyImage, *replyLen, "job reply",
	    m->root, replyOut, &why) != 0) {
	free(*replyImage);
	*replyImage = NULL;
	rc = Fail(err, ROLE_MHSM_FAIL, "job reply: %s", why.msg);
	goto done;
    }
    if (reqOut != NULL) {
	*reqOut = req;
	memset(&req, 0, sizeof(req));
    }
    rc = 0;
  done:
    free(reply.tickets);
    proto_request_free(&req);
    ServedFree(&s.served);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Jobs                                                                 */
/* ------------------------------------------------------------------ */

/*
 * role_mhsm_check_job --
 *	Checks that a job is bound to this M-HSM and answers a request it
 *	served, as it served it (role_mhsm.h).
 */
int
role_mhsm_check_job(RoleMhsm *m, const uint8_t *image, size_t len,
	const char *what, ProtoJob *out, ProtoError *err)
{
    ProtoJob job;
    ProtoError why;
    Served served;
    uint8_t fp[PROTO_DIGEST];
    size_t i;
    int rc;

    memset(&job, 0, sizeof(job));
    memset(&served, 0, sizeof(served));
    if (proto_job_read(image, len, what, m->root, &job, &why) != 0) {
	rc = Fail(err, ROLE_MHSM_CORRUPT, "%s", why.msg);
	goto done;
    }
    if (strcmp(job.mhsmUuid, m->uuid) != 0
	    || CRYPTO_memcmp(job.mhsmCertFingerprint, m->certFp,
		    PROTO_DIGEST) != 0) {
	rc = Fail(err, ROLE_MHSM_WRONG_HSM, "%s (job '%s') is bound to M-HSM "
		"%s%s; this HSM ('%s') is M-HSM %s", what, job.jobName,
		job.mhsmUuid, strcmp(job.mhsmUuid, m->uuid) == 0
		? " with another certificate" : "",
		m->hsm->serverName ? m->hsm->serverName : m->hsm->dir, m->uuid);
	goto done;
    }
    if ((rc = ServedRead(m->hsm, job.requestDigest, &served, err)) <= 0) {
	if (rc == 0) {
	    rc = Fail(err, ROLE_MHSM_UNKNOWN_REQUEST, "%s (job '%s', task "
		    "'%s') answers no job request this M-HSM (%s) served",
		    what, job.jobName, job.taskName, m->uuid);
	}
	goto done;
    }
    rc = ROLE_MHSM_UNKNOWN_REQUEST;
    if (CRYPTO_memcmp(served.nonce, job.bindingNonce, PROTO_NONCE) != 0) {
	Fail(err, rc, "%s: its binding nonce is not the one this M-HSM gave "
		"in its reply", what);
	goto done;
    }
    if (proto_cert_fingerprint(&job.uhsmCert, fp) != 0
	    || strcmp(served.uhsmUuid, job.uhsmUuid) != 0
	    || CRYPTO_memcmp(fp, served.uhsmFp, PROTO_DIGEST) != 0) {
	Fail(err, rc, "%s: signed by another U-HSM than the request it "
		"answers", what);
	goto done;
    }
    if (strcmp(served.jobName, job.jobName) != 0
	    || strcmp(served.taskName, job.taskName) != 0
	    || served.nTickets != job.nTickets) {
	Fail(err, rc, "%s: job '%s', task '%s' with %lu tickets; the request "
		"served was job '%s', task '%s' with %lu tickets", what,
		job.jobName, job.taskName, (unsigned long) job.nTickets,
		served.jobName, served.taskName,
		(unsigned long) served.nTickets);
	goto done;
    }
    for (i = 0; i < job.nTickets; i++) {
	const ProtoJobTicket *jt = &job.tickets[i];
	const ServedTicket *st = &served.tickets[i];

	if (memcmp(jt->id, st->id, PROTO_TICKET_ID) != 0
		|| strcmp(jt->name, st->name) != 0
		|| strcmp(jt->device, st->device) != 0
		|| strcmp(jt->action, st->action) != 0
		|| jt->maxDevices != st->maxDevices) {
	    Fail(err, rc, "%s: ticket %lu ('%s') is not the ticket the request "
		    "defined and this M-HSM numbered", what,
		    (unsigned long) i + 1, jt->name);
	    goto done;
	}
    }
    rc = 0;
    *out = job;
    memset(&job, 0, sizeof(job));
  done:
    ServedFree(&served);
    proto_job_free(&job);
    return rc;
}

typedef struct LoadCtx {
    const ProtoJob *job;
    ProtoTicketSecret *secrets;
    size_t shared;
} LoadCtx;

/*
 * LoadTxn --
 *	Creates the tickets of a checked job that the M-HSM does not hold
 *	yet; refuses the whole job, writing nothing, if any has ended.
 */
static int
LoadTxn(RoleMhsm *m, void *data, ProtoError *err)
{
    LoadCtx *l = data;
    const ProtoJob *job = l->job;
    char *held;
    size_t i;
    int rc = 0;

    if ((held = calloc(job->nTickets, 1)) == NULL) {
	return Fail(err, ROLE_MHSM_FAIL, "no memory");
    }
    l->shared = 0;
    for (i = 0; i < job->nTickets && rc == 0; i++) {
	Ticket t;
	char id[41];

	if ((rc = TicketRead(m->hsm, job->tickets[i].id, &t, err)) < 0) {
	    break;
	}
	if (rc == 1) {
	    if (t.ended) {
		rc = Fail(err, ROLE_MHSM_ENDED, "job '%s' cannot be loaded: its "
			"ticket '%s' (ID %s) was %s on this M-HSM; the tickets "
			"of an ended job can never be loaded again",
			job->jobName, t.name, IdText(t.id, id),
			strcmp(t.endType, "COMPLETED") == 0 ? "completed"
			: "terminated");
	    } else if (memcmp(t.requestDigest, job->requestDigest,
		    PROTO_DIGEST) != 0) {
		rc = Fail(err, ROLE_MHSM_CORRUPT, "ticket ID %s of job '%s' is "
			"held for another request", IdText(t.id, id),
			job->jobName);
	    } else if (CRYPTO_memcmp(t.secret->kip, l->secrets[i].kip,
		    PROTO_KEY) != 0
		    || memcmp(t.secret->designDigest, l->secrets[i].designDigest,
			    PROTO_DIGEST) != 0
		    || strcmp(t.secret->keyMode, l->secrets[i].keyMode) != 0) {
		/* Shared tickets must be the same tickets: a job with another
		 * bitstream or key for them is not the job loaded before. */
		rc = Fail(err, ROLE_MHSM_CORRUPT, "job '%s': ticket '%s' (ID %s) "
			"is held with another bitstream or key mode; this job is "
			"not the one its tickets were loaded from", job->jobName,
			t.name, IdText(t.id, id));
	    } else {
		held[i] = 1;
		l->shared++;
		rc = 0;
	    }
	    TicketFree(&t);
	} else {
	    rc = 0;
	}
    }
    for (i = 0; i < job->nTickets && rc == 0; i++) {
	Ticket t;

	if (held[i]) {
	    continue;
	}
	memset(&t, 0, sizeof(t));
	memcpy(t.id, job->tickets[i].id, PROTO_TICKET_ID);
	memcpy(t.requestDigest, job->requestDigest, PROTO_DIGEST);
	t.name = job->tickets[i].name;
	t.device = job->tickets[i].device;
	t.action = job->tickets[i].action;
	t.jobName = job->jobName;
	t.taskName = job->taskName;
	t.maxDevices = job->tickets[i].maxDevices;
	t.loaded = Now();
	t.secret = &l->secrets[i];
	rc = TicketWrite(m->hsm, &t, err);
    }
    free(held);
    return rc;
}

/*
 * role_mhsm_load_job --
 *	Loads a job's tickets: checked, secrets unsealed inside the HSM,
 *	created or shared in one transaction (role_mhsm.h).
 */
int
role_mhsm_load_job(RoleMhsm *m, const uint8_t *image, size_t len,
	const char *what, ProtoJob *out, size_t *shared, ProtoError *err)
{
    ProtoJob job;
    ProtoBuf aad;
    ProtoError why;
    LoadCtx l;
    uint8_t *plain = NULL;
    size_t plainLen = 0, nSecrets = 0, i;
    int rc;

    memset(&l, 0, sizeof(l));
    proto_buf_init(&aad);
    if ((rc = role_mhsm_check_job(m, image, len, what, &job, err)) != 0) {
	return rc;
    }
    if (proto_job_binding(&job, &aad) != 0
	    || proto_open_p384(m->cert.encKey, "tickets", role_ecdh, &m->encKey,
		    aad.data, aad.len, job.sealedSecrets, job.sealedLen, &plain,
		    &plainLen, &why) != 0) {
	rc = Fail(err, ROLE_MHSM_CORRUPT, "%s: the ticket secrets do not open "
		"with this M-HSM's sealing key: %s", what, why.msg);
	goto done;
    }
    if (proto_ticket_secrets_decode(plain, plainLen, &l.secrets, &nSecrets,
	    &why) != 0) {
	rc = Fail(err, ROLE_MHSM_CORRUPT, "%s: %s", what, why.msg);
	goto done;
    }
    if (nSecrets != job.nTickets) {
	rc = Fail(err, ROLE_MHSM_CORRUPT, "%s: %lu ticket secrets for %lu "
		"tickets", what, (unsigned long) nSecrets,
		(unsigned long) job.nTickets);
	goto done;
    }
    for (i = 0; i < nSecrets; i++) {
	if (memcmp(l.secrets[i].id, job.tickets[i].id, PROTO_TICKET_ID) != 0
		|| strcmp(l.secrets[i].action, job.tickets[i].action) != 0
		|| l.secrets[i].maxDevices != job.tickets[i].maxDevices
		|| proto_key_mode(l.secrets[i].keyMode) == 0) {
	    rc = Fail(err, ROLE_MHSM_CORRUPT, "%s: the secret of ticket '%s' "
		    "does not match the ticket", what, job.tickets[i].name);
	    goto done;
	}
    }
    l.job = &job;
    if ((rc = RunTxn(m->hsm, m, LoadTxn, &l, err)) != 0) {
	goto done;
    }
    if (shared != NULL) {
	*shared = l.shared;
    }
    *out = job;
    memset(&job, 0, sizeof(job));
  done:
    if (l.secrets != NULL) {
	proto_ticket_secrets_free(l.secrets, nSecrets);
    }
    if (plain != NULL) {
	proto_clear_free(plain, plainLen);
    }
    proto_buf_free(&aad);
    proto_job_free(&job);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Programming a device                                                 */
/* ------------------------------------------------------------------ */

/*
 * FindSession --
 *	The device session of a challenge in the given state, or NULL.
 */
static Session *
FindSession(RoleMhsm *m, const uint8_t challenge[PROTO_NONCE],
	SessionState state)
{
    int i;

    for (i = 0; i < ROLE_MHSM_MAX_SESSIONS; i++) {
	Session *s = &m->sessions[i];

	if (s->state == state
		&& CRYPTO_memcmp(s->challenge, challenge, PROTO_NONCE) == 0) {
	    return s;
	}
    }
    return NULL;
}

/*
 * EndSession --
 *	Forgets a device session (its challenge can never be used again).
 */
static void
EndSession(Session *s)
{
    OPENSSL_cleanse(s, sizeof(*s));
}

/*
 * role_mhsm_challenge --
 *	A fresh challenge, remembered until answered; the oldest session
 *	is forgotten when all are in use.
 */
int
role_mhsm_challenge(RoleMhsm *m, uint8_t challenge[PROTO_NONCE],
	ProtoError *err)
{
    Session *s = NULL;
    int i, rc;

    for (i = 0; i < ROLE_MHSM_MAX_SESSIONS; i++) {
	if (m->sessions[i].state == SS_FREE) {
	    s = &m->sessions[i];
	    break;
	}
	if (s == NULL || m->sessions[i].age < s->age) {
	    s = &m->sessions[i];
	}
    }
    EndSession(s);
    if ((rc = Random(m, challenge, PROTO_NONCE, err)) != 0) {
	return rc;
    }
    memcpy(s->challenge, challenge, PROTO_NONCE);
    s->state = SS_CHALLENGED;
    s->age = ++m->clock;
    return 0;
}

/*
 * role_mhsm_authenticate --
 *	Checks a device's answer to a challenge (docs/PROTOCOL.md,
 *	"Programming a device", step 1); the verified device is kept in
 *	the session for the code.
 */
int
role_mhsm_authenticate(RoleMhsm *m, const uint8_t challenge[PROTO_NONCE],
	const uint8_t *answer, size_t answerLen, const char *die,
	RoleMhsmDevice *device, ProtoError *err)
{
    Session *s = FindSession(m, challenge, SS_CHALLENGED);
    ProtoDevAuth a;
    ProtoError why;
    ProtoBuf tbs;
    char dsnHex[2 * PROTO_DSN + 1];
    int rc;

    if (s == NULL) {
	return Fail(err, ROLE_MHSM_AUTH, "device authenticity check: the "
		"challenge was not issued by this M-HSM, or was already "
		"answered");
    }
    EndSession(s);			/* one answer per challenge, whatever it is */
    proto_buf_init(&tbs);
    if (proto_dev_auth_decode(answer, answerLen, &a, &why) != 0) {
	return Fail(err, ROLE_MHSM_AUTH, "device authenticity check: %s",
		why.msg);
    }
    proto_hex(a.dsn, PROTO_DSN, dsnHex);
    if (CRYPTO_memcmp(a.challenge, challenge, PROTO_NONCE) != 0) {
	return Fail(err, ROLE_MHSM_AUTH, "device authenticity check: device "
		"%s answered another challenge", dsnHex);
    }
    if (a.hasKfp) {
	if (proto_cert_verify(&a.cert, PROTO_CERT_DEVICE, m->root, &why) != 0) {
	    return Fail(err, ROLE_MHSM_AUTH, "device authenticity check FAILED: "
		    "device %s: its certificate is not one of the vendor root "
		    "(%s)", dsnHex, why.msg);
	}
	if (strcmp(a.cert.subject, dsnHex) != 0 || strcmp(a.cert.die, a.die) != 0) {
	    return Fail(err, ROLE_MHSM_AUTH, "device authenticity check FAILED: "
		    "device %s (%s) shows the certificate of device %s (%s)",
		    dsnHex, a.die, a.cert.subject, a.cert.die);
	}
	if (proto_dev_auth_tbs(challenge, a.dsn, a.ephemeral, &tbs) != 0
		|| proto_verify_p384(a.cert.signKey, tbs.data, tbs.len, a.sig,
			&why) != 0
		|| !proto_p384_valid(a.ephemeral)) {
	    proto_buf_free(&tbs);
	    return Fail(err, ROLE_MHSM_AUTH, "device authenticity check FAILED: "
		    "device %s: its KFP signature does not verify", dsnHex);
	}
	proto_buf_free(&tbs);
    } else {
	uint8_t dfk[PROTO_KEY], fk[PROTO_KEY], mac[PROTO_MAC];

	if ((rc = DfkKey(m, dfk, err)) != 0) {
	    return rc;
	}
	rc = proto_device_fk(dfk, a.dsn, fk, err) != 0
		|| proto_dev_auth_mac(fk, challenge, a.dsn, mac, err) != 0;
	OPENSSL_cleanse(dfk, sizeof(dfk));
	OPENSSL_cleanse(fk, sizeof(fk));
	if (rc) {
	    return ROLE_MHSM_FAIL;
	}
	if (CRYPTO_memcmp(mac, a.mac, PROTO_MAC) != 0) {
	    return Fail(err, ROLE_MHSM_AUTH, "device authenticity check FAILED: "
		    "device %s does not hold the factory key of its DSN",
		    dsnHex);
	}
    }
    if (die != NULL && strcmp(die, a.die) != 0) {
	return Fail(err, ROLE_MHSM_DIE, "device %s has die %s: the job's device "
		"has die %s", dsnHex, a.die, die);
    }
    s->state = SS_AUTHENTICATED;
    s->age = ++m->clock;
    memcpy(s->challenge, challenge, PROTO_NONCE);
    memcpy(s->device.dsn, a.dsn, PROTO_DSN);
    memcpy(s->device.die, a.die, sizeof(a.die));
    s->device.hasKfp = a.hasKfp;
    if (a.hasKfp) {
	memcpy(s->kfp, a.cert.signKey, PROTO_P384_PUB);
	memcpy(s->d, a.ephemeral, PROTO_P384_PUB);
    }
    if (device != NULL) {
	*device = s->device;
    }
    return 0;
}

typedef struct IssueCtx {
    const uint8_t *ticketId;
    Session *session;
    uint8_t codeId[PROTO_CODE_ID];
    int reused;
    int64_t maxDevices, completed, pending;
    ProtoTicketSecret *secret;		/* copied out: what the code needs */
    char name[257];
} IssueCtx;

/* A copy of one ticket secret (through its encoding), or NULL. */
static ProtoTicketSecret *
CopySecret(const ProtoTicketSecret *from)
{
    ProtoBuf b;
    ProtoTicketSecret *copy = NULL;
    size_t n = 0;

    proto_buf_init(&b);
    if (proto_ticket_secrets_encode(from, 1, &b) != 0
	    || proto_ticket_secrets_decode(b.data, b.len, &copy, &n, NULL) != 0
	    || n != 1) {
	if (copy != NULL) {
	    proto_ticket_secrets_free(copy, n);
	}
	copy = NULL;
    }
    proto_buf_free(&b);
    return copy;
}

/*
 * IssueTxn --
 *	The reservation: checks the ticket and its counter and records a
 *	pending device durably (or reuses this DSN's pending reservation).
 */
static int
IssueTxn(RoleMhsm *m, void *data, ProtoError *err)
{
    IssueCtx *ic = data;
    const RoleMhsmDevice *dev = &ic->session->device;
    ProtoKeyMode mode;
    Ticket t;
    Pending *p = NULL, *grown;
    char id[41], dsn[2 * PROTO_DSN + 1];
    size_t i;
    int rc;

    if ((rc = TicketRead(m->hsm, ic->ticketId, &t, err)) <= 0) {
	return rc < 0 ? rc : Fail(err, ROLE_MHSM_NOT_LOADED, "ticket ID %s is "
		"not loaded in M-HSM %s", IdText(ic->ticketId, id), m->uuid);
    }
    snprintf(ic->name, sizeof(ic->name), "%s", t.name);
    if (t.ended) {
	rc = Fail(err, ROLE_MHSM_ENDED, "ticket '%s' (ID %s) was %s: it issues "
		"no more authorization codes", t.name, IdText(t.id, id),
		strcmp(t.endType, "COMPLETED") == 0 ? "completed" : "terminated");
	goto done;
    }
    mode = proto_key_mode(t.secret->keyMode);
    if (mode != PROTO_KEYMODE_DFK && !dev->hasKfp) {
	proto_hex(dev->dsn, PROTO_DSN, dsn);
	rc = Fail(err, ROLE_MHSM_KEY_MODE, "ticket '%s' uses key mode %s, "
		"which needs a factory key pair (KFP): device %s (%s) has none",
		t.name, t.secret->keyMode, dsn, dev->die);
	goto done;
    }
    for (i = 0; i < t.nPending; i++) {
	if (memcmp(t.pending[i].dsn, dev->dsn, PROTO_DSN) == 0) {
	    p = &t.pending[i];
	    break;
	}
    }
    if (p == NULL) {
	if (t.maxDevices != PROTO_UNLIMITED
		&& t.completed + (int64_t) t.nPending >= t.maxDevices) {
	    rc = Fail(err, ROLE_MHSM_EXHAUSTED, "ticket '%s' (ID %s) has no "
		    "authorization code left: %lld of %lld devices %s",
		    t.name, IdText(t.id, id), (long long) (t.completed
		    + (int64_t) t.nPending), (long long) t.maxDevices,
		    t.nPending ? "completed or in progress" : "programmed");
	    goto done;
	}
	if ((grown = realloc(t.pending, (t.nPending + 1)
		* sizeof(*t.pending))) == NULL) {
	    rc = Fail(err, ROLE_MHSM_FAIL, "no memory");
	    goto done;
	}
	t.pending = grown;
	p = &t.pending[t.nPending++];
	memset(p, 0, sizeof(*p));
	memcpy(p->dsn, dev->dsn, PROTO_DSN);
    } else {
	ic->reused = 1;
    }
    if ((rc = Random(m, ic->codeId, PROTO_CODE_ID, err)) != 0) {
	goto done;
    }
    memcpy(p->codeId, ic->codeId, PROTO_CODE_ID);
    p->issued = Now();
    p->issues++;
    if ((ic->secret = CopySecret(t.secret)) == NULL) {
	rc = Fail(err, ROLE_MHSM_FAIL, "no memory");
	goto done;
    }
    if ((rc = TicketWrite(m->hsm, &t, err)) != 0) {
	proto_ticket_secrets_free(ic->secret, 1);
	ic->secret = NULL;
	goto done;
    }
    ic->maxDevices = t.maxDevices;
    ic->completed = t.completed;
    ic->pending = (int64_t) t.nPending;
  done:
    TicketFree(&t);
    return rc;
}

/*
 * role_mhsm_issue_code --
 *	The reservation (durable), then the authorization code for the
 *	device of the session (steps 2 and 3).
 */
int
role_mhsm_issue_code(RoleMhsm *m, const uint8_t challenge[PROTO_NONCE],
	const uint8_t ticketId[PROTO_TICKET_ID], uint8_t **code, size_t *codeLen,
	RoleMhsmCode *info, ProtoError *err)
{
    Session *s = FindSession(m, challenge, SS_AUTHENTICATED);
    IssueCtx ic;
    ProtoCodeTarget target;
    ProtoAuthCode ac;
    uint8_t dfk[PROTO_KEY], fk[PROTO_KEY];
    size_t i;
    int rc;

    *code = NULL;
    *codeLen = 0;
    if (s == NULL) {
	return Fail(err, ROLE_MHSM_AUTH, "no device passed the authenticity "
		"check under this challenge (or its code was already issued)");
    }
    memset(&ic, 0, sizeof(ic));
    memset(&ac, 0, sizeof(ac));
    memset(&target, 0, sizeof(target));
    ic.ticketId = ticketId;
    ic.session = s;
    if ((rc = RunTxn(m->hsm, m, IssueTxn, &ic, err)) != 0) {
	EndSession(s);
	return rc;
    }

    /*
     * The reservation is durable: now the code.  A failure from here on
     * leaves the reservation pending for this DSN, as a device that
     * vanished would.
     */
    memcpy(target.dsn, s->device.dsn, PROTO_DSN);
    memcpy(target.challenge, challenge, PROTO_NONCE);
    target.mode = proto_key_mode(ic.secret->keyMode);
    target.kfp = s->kfp;
    target.d = s->d;
    memcpy(ac.kip, ic.secret->kip, PROTO_KEY);
    ac.action = ic.secret->action;
    memcpy(ac.ticketId, ticketId, PROTO_TICKET_ID);
    memcpy(ac.designDigest, ic.secret->designDigest, PROTO_DIGEST);
    memcpy(ac.codeId, ic.codeId, PROTO_CODE_ID);
    rc = 0;
    if (target.mode == PROTO_KEYMODE_DFK) {
	if ((rc = DfkKey(m, dfk, err)) == 0
		&& proto_device_fk(dfk, s->device.dsn, fk, err) != 0) {
	    rc = ROLE_MHSM_FAIL;
	}
	OPENSSL_cleanse(dfk, sizeof(dfk));
	target.fk = fk;
    }
    if (rc == 0 && ic.secret->nBaseKeys > 0) {
	if ((ac.keys = calloc(ic.secret->nBaseKeys, sizeof(*ac.keys))) == NULL) {
	    rc = Fail(err, ROLE_MHSM_FAIL, "no memory");
	}
	for (i = 0; rc == 0 && i < ic.secret->nBaseKeys; i++) {
	    const ProtoNamedBytes *base = &ic.secret->baseKeys[i];

	    ac.nKeys = i + 1;
	    ac.keys[i].name = base->name;
	    if (base->len != PROTO_KEY
		    || (ac.keys[i].data = malloc(PROTO_KEY)) == NULL) {
		rc = Fail(err, ROLE_MHSM_FAIL, "base key %s: %s", base->name,
			base->len != PROTO_KEY ? "not a 32-byte key" : "no memory");
		break;
	    }
	    ac.keys[i].len = PROTO_KEY;
	    if (proto_per_device_key(base->data, base->name, s->device.dsn,
		    ac.keys[i].data, err) != 0) {
		rc = ROLE_MHSM_FAIL;
	    }
	}
    }
    if (rc == 0 && proto_authcode_seal(&target, &ac, code, codeLen, err) != 0) {
	rc = ROLE_MHSM_FAIL;
    }
    if (rc == 0 && info != NULL) {
	memset(info, 0, sizeof(*info));
	memcpy(info->codeId, ic.codeId, PROTO_CODE_ID);
	snprintf(info->keyMode, sizeof(info->keyMode), "%s",
		ic.secret->keyMode);
	info->reused = ic.reused;
	info->maxDevices = ic.maxDevices;
	info->completed = ic.completed;
	info->pending = ic.pending;
    }
    OPENSSL_cleanse(fk, sizeof(fk));
    for (i = 0; i < ac.nKeys; i++) {
	if (ac.keys[i].data != NULL) {
	    proto_clear_free(ac.keys[i].data, PROTO_KEY);
	}
    }
    free(ac.keys);
    OPENSSL_cleanse(&ac, sizeof(ac));
    proto_ticket_secrets_free(ic.secret, 1);
    EndSession(s);
    return rc;
}

typedef struct ConfirmCtx {
    const uint8_t *ticketId;
    ProtoCoc *coc;
    int64_t maxDevices, completed, pending;
} ConfirmCtx;

/*
 * ConfirmTxn --
 *	Checks a CoC against the ticket and its pending reservation; the
 *	reservation becomes a completed device and the CoC is kept.
 */
static int
ConfirmTxn(RoleMhsm *m, void *data, ProtoError *err)
{
    ConfirmCtx *cc = data;
    ProtoCoc *coc = cc->coc, *grown;
    uint8_t mac[PROTO_MAC];
    char id[41], dsn[2 * PROTO_DSN + 1];
    Ticket t;
    size_t i;
    int rc;

    proto_hex(coc->dsn, PROTO_DSN, dsn);
    if ((rc = TicketRead(m->hsm, cc->ticketId, &t, err)) <= 0) {
	return rc < 0 ? rc : Fail(err, ROLE_MHSM_NOT_LOADED, "ticket ID %s is "
		"not loaded in M-HSM %s", IdText(cc->ticketId, id), m->uuid);
    }
    if (t.ended) {
	rc = Fail(err, ROLE_MHSM_ENDED, "the CoC of device %s came after "
		"ticket '%s' ended", dsn, t.name);
	goto done;
    }
    if ((rc = FlushTail(m->hsm, &t, err)) != 0) {
	goto done;
    }
    for (i = 0; i < t.nPending; i++) {
	if (memcmp(t.pending[i].dsn, coc->dsn, PROTO_DSN) == 0
		&& CRYPTO_memcmp(t.pending[i].codeId, coc->codeId,
			PROTO_CODE_ID) == 0) {
	    break;
	}
    }
    rc = ROLE_MHSM_COC;
    if (i == t.nPending) {
	Fail(err, rc, "the CoC of device %s answers no authorization code "
		"pending on ticket '%s'", dsn, t.name);
	goto done;
    }
    if (strcmp(coc->action, t.action) != 0
	    || memcmp(coc->ticketId, t.id, PROTO_TICKET_ID) != 0
	    || CRYPTO_memcmp(coc->designDigest, t.secret->designDigest,
		    PROTO_DIGEST) != 0) {
	Fail(err, rc, "the CoC of device %s is for another action or design "
		"than ticket '%s' (%s)", dsn, t.name, t.action);
	goto done;
    }
    if (proto_coc_mac(t.secret->kip, coc, mac, err) != 0) {
	rc = ROLE_MHSM_FAIL;
	goto done;
    }
    if (CRYPTO_memcmp(mac, coc->mac, PROTO_MAC) != 0) {
	Fail(err, rc, "the CoC of device %s does not verify: it was not made "
		"by a device holding the bitstream key, or was altered", dsn);
	goto done;
    }
    if ((grown = realloc(t.tail, (t.nTail + 1) * sizeof(*t.tail))) == NULL) {
	rc = Fail(err, ROLE_MHSM_FAIL, "no memory");
	goto done;
    }
    t.tail = grown;
    t.tail[t.nTail] = *coc;
    if ((t.tail[t.nTail].action = Dup(coc->action)) == NULL) {
	rc = Fail(err, ROLE_MHSM_FAIL, "no memory");
	goto done;
    }
    t.nTail++;
    t.pending[i] = t.pending[--t.nPending];
    t.completed++;
    if ((rc = TicketWrite(m->hsm, &t, err)) != 0
	    || (rc = FlushTail(m->hsm, &t, err)) != 0) {
	goto done;
    }
    cc->maxDevices = t.maxDevices;
    cc->completed = t.completed;
    cc->pending = (int64_t) t.nPending;
  done:
    TicketFree(&t);
    return rc;
}

/*
 * role_mhsm_confirm --
 *	Takes a device's CoC (step 5): the reservation becomes a completed
 *	device.
 */
int
role_mhsm_confirm(RoleMhsm *m, const uint8_t ticketId[PROTO_TICKET_ID],
	const uint8_t *cocMsg, size_t cocLen, RoleMhsmCode *info,
	ProtoError *err)
{
    ConfirmCtx cc;
    ProtoCoc coc;
    ProtoError why;
    int rc;

    if (proto_coc_decode(cocMsg, cocLen, &coc, &why) != 0) {
	return Fail(err, ROLE_MHSM_COC, "%s", why.msg);
    }
    memset(&cc, 0, sizeof(cc));
    cc.ticketId = ticketId;
    cc.coc = &coc;
    rc = RunTxn(m->hsm, m, ConfirmTxn, &cc, err);
    if (rc == 0 && info != NULL) {
	memset(info, 0, sizeof(*info));
	memcpy(info->codeId, coc.codeId, PROTO_CODE_ID);
	info->maxDevices = cc.maxDevices;
	info->completed = cc.completed;
	info->pending = cc.pending;
    }
    proto_coc_free(&coc);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Status, end of job, ticket administration                            */
/* ------------------------------------------------------------------ */

/* Fills and signs the certifier of a ticket being removed now. */
static int
EndTicket(RoleMhsm *m, Ticket *t, const char *endType, ProtoError *err)
{
    ProtoCertifier c;
    ProtoBuf tbs;
    int rc;

    memset(&c, 0, sizeof(c));
    memcpy(c.ticketId, t->id, PROTO_TICKET_ID);
    c.ticketName = t->name;
    c.action = t->action;
    memcpy(c.requestDigest, t->requestDigest, PROTO_DIGEST);
    memcpy(c.mhsmUuid, m->uuid, sizeof(m->uuid));
    c.maxDevices = t->maxDevices;
    c.completed = t->completed;
    c.pending = (int64_t) t->nPending;
    c.endType = (char *) endType;
    c.removed = Now();
    proto_buf_init(&tbs);
    if (proto_certifier_tbs(&c, &tbs) != 0) {
	proto_buf_free(&tbs);
	return Fail(err, ROLE_MHSM_FAIL, "job end certifier: no memory");
    }
    rc = role_sign(&m->signKey, tbs.data, tbs.len, t->endSig, err);
    proto_buf_free(&tbs);
    if (rc != 0) {
	return ROLE_MHSM_FAIL;
    }
    if ((t->endType = Dup(endType)) == NULL) {
	return Fail(err, ROLE_MHSM_FAIL, "no memory");
    }
    t->ended = 1;
    t->removed = c.removed;
    t->endPending = c.pending;
    proto_ticket_secrets_free(t->secret, 1);	/* cleanses the secrets */
    t->secret = NULL;
    return TicketWrite(m->hsm, t, err);
}

/* The certifier of an ended ticket, as it was signed. */
static int
TicketCertifier(const RoleMhsm *m, const Ticket *t, ProtoCertifier *c)
{
    memset(c, 0, sizeof(*c));
    memcpy(c->ticketId, t->id, PROTO_TICKET_ID);
    memcpy(c->requestDigest, t->requestDigest, PROTO_DIGEST);
    memcpy(c->mhsmUuid, m->uuid, sizeof(m->uuid));
    c->maxDevices = t->maxDevices;
    c->completed = t->completed;
    c->pending = t->endPending;
    c->removed = t->removed;
    memcpy(c->signature, t->endSig, PROTO_P384_SIG);
    c->ticketName = Dup(t->name);
    c->action = Dup(t->action);
    c->endType = Dup(t->endType);
    return (c->ticketName && c->action && c->endType) ? 0 : -1;
}

typedef struct StatusCtx {
    const ProtoJob *job;
    int mode;
    int sign;			/* a file is wanted: count the sequence */
    ProtoStatus *st;
} StatusCtx;

/*
 * StatusTxn --
 *	Reads every ticket of the job at one instant; for an end of job,
 *	checks and removes the live ones first.  Fills the status.
 */
static int
StatusTxn(RoleMhsm *m, void *data, ProtoError *err)
{
    StatusCtx *sc = data;
    const ProtoJob *job = sc->job;
    ProtoStatus *st = sc->st;
    Ticket *tickets;
    Served served;
    char id[41];
    size_t i, n = job->nTickets, live = 0;
    int rc = 0, terminated = 0;

    if ((tickets = calloc(n, sizeof(*tickets))) == NULL) {
	return Fail(err, ROLE_MHSM_FAIL, "no memory");
    }
    for (i = 0; i < n; i++) {
	if ((rc = TicketRead(m->hsm, job->tickets[i].id, &tickets[i], err)) <= 0) {
	    if (rc == 0) {
		rc = Fail(err, ROLE_MHSM_NOT_LOADED, "ticket '%s' (ID %s) of job "
			"'%s' is not loaded in M-HSM %s: run create_job_project "
			"first", job->tickets[i].name,
			IdText(job->tickets[i].id, id), job->jobName, m->uuid);
	    }
	    goto done;
	}
	live += !tickets[i].ended;
    }
    rc = 0;
    if (sc->mode == ROLE_MHSM_COMPLETE) {
	for (i = 0; i < n; i++) {
	    Ticket *t = &tickets[i];
	    int64_t left = t->maxDevices - t->completed - (int64_t) t->nPending;

	    if (t->ended) {
		continue;
	    }
	    if (t->maxDevices == PROTO_UNLIMITED || left > 0) {
		rc = t->maxDevices == PROTO_UNLIMITED
			? Fail(err, ROLE_MHSM_INCOMPLETE, "the job is not "
			    "complete: ticket '%s' (ID %s) is unlimited; use "
			    "-terminate to end the job", t->name, IdText(t->id, id))
			: Fail(err, ROLE_MHSM_INCOMPLETE, "the job is not "
			    "complete: ticket '%s' (ID %s) has %lld authorization "
			    "code%s left; use -terminate to end the job anyway",
			    t->name, IdText(t->id, id), (long long) left,
			    left == 1 ? "" : "s");
		goto done;
	    }
	}
    }
    if (sc->mode != ROLE_MHSM_STATUS) {
	for (i = 0; i < n && rc == 0; i++) {
	    if (!tickets[i].ended) {
		rc = EndTicket(m, &tickets[i], sc->mode == ROLE_MHSM_COMPLETE
			? "COMPLETED" : "TERMINATED", err);
	    }
	}
	if (rc != 0) {
	    goto done;
	}
    }

    /* The status itself. */
    if ((rc = ServedRead(m->hsm, job->requestDigest, &served, err)) <= 0) {
	if (rc == 0) {
	    rc = Fail(err, ROLE_MHSM_UNKNOWN_REQUEST, "job '%s' answers no "
		    "request this M-HSM served", job->jobName);
	}
	goto done;
    }
    rc = 0;
    if (sc->sign) {
	served.sequence++;
	if ((rc = ServedWrite(m->hsm, &served, err)) != 0) {
	    ServedFree(&served);
	    goto done;
	}
    }
    st->sequence = served.sequence;
    ServedFree(&served);
    st->isEnd = sc->mode != ROLE_MHSM_STATUS || live == 0;
    st->nTickets = n;
    if ((st->tickets = calloc(n, sizeof(*st->tickets))) == NULL
	    || (st->isEnd && (st->certifiers = calloc(n,
		    sizeof(*st->certifiers))) == NULL)) {
	rc = Fail(err, ROLE_MHSM_FAIL, "no memory");
	goto done;
    }
    for (i = 0; i < n; i++) {
	Ticket *t = &tickets[i];
	ProtoTicketStatus *ts = &st->tickets[i];

	memcpy(ts->id, t->id, PROTO_TICKET_ID);
	ts->name = Dup(t->name);
	ts->device = Dup(t->device);
	ts->action = Dup(t->action);
	ts->maxDevices = t->maxDevices;
	ts->completed = t->completed;
	ts->pending = t->ended ? t->endPending : (int64_t) t->nPending;
	if (ts->name == NULL || ts->device == NULL || ts->action == NULL) {
	    rc = Fail(err, ROLE_MHSM_FAIL, "no memory");
	    goto done;
	}
	if ((rc = TicketCocs(m->hsm, t, &st->cocs, &st->nCocs, err)) != 0) {
	    goto done;
	}
	if (st->isEnd) {
	    if (TicketCertifier(m, t, &st->certifiers[i]) != 0) {
		rc = Fail(err, ROLE_MHSM_FAIL, "no memory");
		goto done;
	    }
	    st->nCertifiers = i + 1;
	    terminated |= strcmp(t->endType, "TERMINATED") == 0;
	}
    }
    if (st->isEnd && (st->endType = Dup(terminated ? "TERMINATED"
	    : "COMPLETED")) == NULL) {
	rc = Fail(err, ROLE_MHSM_FAIL, "no memory");
    }
  done:
    for (i = 0; i < n; i++) {
	TicketFree(&tickets[i]);
    }
    free(tickets);
    return rc;
}

/*
 * role_mhsm_archive --
 *	Writes a status image into the archive folder: the end status as
 *	job-<h>-end.status, an intermediate one as job-<h>-status-<seq>.status
 *	(<h>: the first 20 bytes of the request digest in hex).
 */
int
role_mhsm_archive(RoleMhsm *m, const ProtoStatus *st, const uint8_t *image,
	size_t len, char **pathOut, ProtoError *err)
{
    char *dir = role_mhsm_archive_dir(m), *path = NULL, name[128], hex[41];
    PlatError pe;
    int rc = 0;

    proto_hex(st->requestDigest, 20, hex);
    if (st->isEnd) {
	snprintf(name, sizeof(name), "job-%s-end.status", hex);
    } else {
	snprintf(name, sizeof(name), "job-%s-status-%llu.status", hex,
		(unsigned long long) st->sequence);
    }
    if (dir == NULL || (path = plat_join(dir, name)) == NULL) {
	rc = Fail(err, ROLE_MHSM_FAIL, "no memory");
    } else if (plat_mkdirs(dir, 0700, &pe) != 0
	    || plat_write_file_durable(path, image, len, 0600, &pe) != 0) {
	rc = Fail(err, ROLE_MHSM_FAIL, "cannot archive the job status: %s",
		pe.msg);
    }
    if (rc == 0 && pathOut != NULL) {
	*pathOut = path;
	path = NULL;
    }
    free(path);
    free(dir);
    return rc;
}

/*
 * role_mhsm_status --
 *	A job's status, or its end (docs/PROTOCOL.md, "Status and end of
 *	job"; role_mhsm.h).
 */
int
role_mhsm_status(RoleMhsm *m, const ProtoJob *job, int mode, uint8_t **image,
	size_t *len, ProtoStatus *out, ProtoError *err)
{
    ProtoStatus st;
    StatusCtx sc;
    int rc;

    if (image != NULL) {
	*image = NULL;
	*len = 0;
    }
    memset(&st, 0, sizeof(st));
    if ((st.jobName = Dup(job->jobName)) == NULL
	    || (st.taskName = Dup(job->taskName)) == NULL) {
	rc = Fail(err, ROLE_MHSM_FAIL, "no memory");
	goto done;
    }
    memcpy(st.mhsmUuid, m->uuid, sizeof(m->uuid));
    memcpy(st.requestDigest, job->requestDigest, PROTO_DIGEST);
    st.created = Now();
    sc.job = job;
    sc.mode = mode;
    sc.sign = image != NULL || mode != ROLE_MHSM_STATUS;
    sc.st = &st;
    if ((rc = RunTxn(m->hsm, m, StatusTxn, &sc, err)) != 0) {
	goto done;
    }
    if (sc.sign) {
	uint8_t *img = NULL;
	size_t imgLen = 0;

	ProtoError why;

	if (proto_status_write(&st, role_sign, &m->signKey, &img, &imgLen,
		&why) != 0) {
	    rc = Fail(err, ROLE_MHSM_FAIL, "job status: %s", why.msg);
	    goto done;
	}
	if (st.isEnd && (rc = role_mhsm_archive(m, &st, img, imgLen, NULL,
		err)) != 0) {
	    free(img);
	    goto done;
	}
	if (image != NULL) {
	    *image = img;
	    *len = imgLen;
	} else {
	    free(img);
	}
    }
    if (out != NULL) {
	*out = st;
	memset(&st, 0, sizeof(st));
    }
    rc = 0;
  done:
    proto_status_free(&st);
    return rc;
}

/*
 * role_mhsm_list_tickets --
 *	Every ticket record of the M-HSM, decoded, sorted by id.
 */
int
role_mhsm_list_tickets(RoleMhsm *m, RoleMhsmTicket **out, size_t *n,
	ProtoError *err)
{
    char **names = NULL;
    RoleMhsmTicket *list = NULL;
    size_t count = 0, i;
    hsm_err_t hrc;
    int rc = 0;

    *out = NULL;
    *n = 0;
    if ((hrc = hsm_fw_blob_list(m->hsm->session, "mhsm.t.", &names))
	    != HSM_NO_ERROR) {
	return HsmFail(err, "M-HSM ticket list", hrc);
    }
    while (names[count] != NULL) {
	count++;
    }
    if (count > 0 && (list = calloc(count, sizeof(*list))) == NULL) {
	plat_free_list(names);
	return Fail(err, ROLE_MHSM_FAIL, "no memory");
    }
    for (i = 0; i < count; i++) {
	uint8_t id[PROTO_TICKET_ID];
	Ticket t;

	if (strlen(names[i]) != 7 + 2 * PROTO_TICKET_ID
		|| proto_unhex(names[i] + 7, id, PROTO_TICKET_ID) != 0) {
	    continue;			/* not a ticket record name */
	}
	if ((rc = TicketRead(m->hsm, id, &t, err)) <= 0) {
	    if (rc == 0) {
		continue;		/* removed meanwhile */
	    }
	    break;
	}
	memcpy(list[*n].id, t.id, PROTO_TICKET_ID);
	list[*n].name = t.name;
	list[*n].device = t.device;
	list[*n].action = t.action;
	list[*n].jobName = t.jobName;
	t.name = t.device = t.action = t.jobName = NULL;
	list[*n].ended = t.ended;
	list[*n].maxDevices = t.maxDevices;
	list[*n].completed = t.completed;
	list[*n].pending = t.ended ? t.endPending : (int64_t) t.nPending;
	(*n)++;
	TicketFree(&t);
	rc = 0;
    }
    plat_free_list(names);
    if (rc != 0) {
	role_mhsm_tickets_free(list, *n);
	*n = 0;
	return rc;
    }
    *out = list;
    return 0;
}

/*
 * role_mhsm_tickets_free --
 *	Frees a ticket list.
 */
void
role_mhsm_tickets_free(RoleMhsmTicket *list, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
	free(list[i].name);
	free(list[i].device);
	free(list[i].action);
	free(list[i].jobName);
    }
    free(list);
}

typedef struct RemoveCtx {
    const uint8_t *ids;
    size_t n, removed;
} RemoveCtx;

/*
 * RemoveTxn --
 *	Inside the transaction: checks every id is held, then ends the
 *	live ones.
 */
static int
RemoveTxn(RoleMhsm *m, void *data, ProtoError *err)
{
    RemoveCtx *r = data;
    Ticket t;
    char id[41];
    size_t i;
    int rc;

    for (i = 0; i < r->n; i++) {
	const uint8_t *tid = r->ids + i * PROTO_TICKET_ID;

	if ((rc = TicketRead(m->hsm, tid, &t, err)) <= 0) {
	    return rc < 0 ? rc : Fail(err, ROLE_MHSM_NOT_LOADED, "ticket ID %s "
		    "is not in M-HSM %s", IdText(tid, id), m->uuid);
	}
	TicketFree(&t);
    }
    r->removed = 0;
    for (i = 0; i < r->n; i++) {
	if ((rc = TicketRead(m->hsm, r->ids + i * PROTO_TICKET_ID, &t,
		err)) < 0) {
	    return rc;
	}
	rc = 0;
	if (!t.ended) {
	    if ((rc = EndTicket(m, &t, "TERMINATED", err)) == 0) {
		r->removed++;
	    }
	}
	TicketFree(&t);
	if (rc != 0) {
	    return rc;
	}
    }
    return 0;
}

/*
 * role_mhsm_remove_tickets --
 *	Terminates tickets by id (remove_hsm_tickets).
 */
int
role_mhsm_remove_tickets(RoleMhsm *m, const uint8_t *ids, size_t n,
	size_t *removed, ProtoError *err)
{
    RemoveCtx r;
    int rc;

    r.ids = ids;
    r.n = n;
    r.removed = 0;
    rc = RunTxn(m->hsm, m, RemoveTxn, &r, err);
    if (removed != NULL) {
	*removed = r.removed;
    }
    return rc;
}
