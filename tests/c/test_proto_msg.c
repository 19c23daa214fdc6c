/*
 * test_proto_msg.c --
 *
 *	Unit tests of the protocol's messages and certificates
 *	(proto_msg.c, proto_cert.c): a round trip of every message with every
 *	field set, deterministic encodings, every required field missing,
 *	present twice or of the wrong size (with the message naming the item
 *	and field), unknown tags skipped, oversized counts, the file-level
 *	readers and writers (signatures, certificates, type confusion, every
 *	truncation and many flipped bits), certificate checks, the CoC MAC
 *	computed two ways and the job binding.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "unit.h"
#include "proto/proto.h"

static EVP_PKEY *rootKey, *uhsmKey, *mhsmKey, *mhsmEnc;
static uint8_t rootPub[96], uhsmPub[96], mhsmPub[96], mhsmEncPub[96];
static ProtoCert uhsmCert, mhsmCert;

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static int
SoftSign(void *ctx, const uint8_t *data, size_t len, uint8_t sig[96],
	ProtoError *err)
{
    return proto_p384_sign(ctx, data, len, sig, err);
}

static int
SoftEcdh(void *ctx, const uint8_t peer[96], uint8_t shared[48],
	ProtoError *err)
{
    return proto_p384_ecdh(ctx, peer, shared, err);
}

/* A certificate signed by the test's root. */
static void
MakeCertDie(ProtoCert *c, ProtoCertKind kind, const char *subject,
	const char *die, const uint8_t sign[96], const uint8_t *enc)
{
    ProtoBuf tbs;
    ProtoError err;

    memset(c, 0, sizeof(*c));
    c->kind = kind;
    strcpy(c->subject, subject);
    strcpy(c->die, die);
    memcpy(c->signKey, sign, 96);
    if (enc != NULL) {
	memcpy(c->encKey, enc, 96);
	c->hasEncKey = 1;
    }
    c->serial = 7;
    c->issued = 1700000000;
    proto_buf_init(&tbs);
    if (proto_cert_tbs(c, &tbs) != 0
	    || proto_p384_sign(rootKey, tbs.data, tbs.len, c->signature,
		&err) != 0) {
	fprintf(stderr, "MakeCert failed\n");
    }
    proto_buf_free(&tbs);
}

static void
MakeCert(ProtoCert *c, ProtoCertKind kind, const char *subject,
	const uint8_t sign[96], const uint8_t *enc)
{
    MakeCertDie(c, kind, subject, "", sign, enc);
}

static void
Fill(uint8_t *p, size_t n, int seed)
{
    size_t i;

    for (i = 0; i < n; i++) {
	p[i] = (uint8_t) (seed * 31 + i * 7);
    }
}

/* A copy of the top-level record without the items of tag (count: how
 * many were removed). */
static uint8_t *
Without(const uint8_t *data, size_t len, uint16_t tag, size_t *outLen,
	int *count)
{
    ProtoReader r;
    ProtoItem it;
    uint8_t *out = malloc(len + 1);
    size_t n = 0;

    *count = 0;
    proto_reader_init(&r, data, len);
    while (proto_next(&r, &it) == 1) {
	size_t whole = 6 + it.len;

	if (it.tag == tag) {
	    (*count)++;
	    continue;
	}
	memcpy(out + n, it.val - 6, whole);
	n += whole;
    }
    *outLen = n;
    return out;
}

/* The record with the first item of tag appended again. */
static uint8_t *
Twice(const uint8_t *data, size_t len, uint16_t tag, size_t *outLen)
{
    ProtoItem it;
    uint8_t *out;

    if (proto_find(data, len, tag, &it) != 1) {
	*outLen = 0;
	return NULL;
    }
    out = malloc(len + 6 + it.len);
    memcpy(out, data, len);
    memcpy(out + len, it.val - 6, 6 + it.len);
    *outLen = len + 6 + it.len;
    return out;
}

/*
 * The record with, in the index-th (1-based) item of outer, the inner
 * items of tag inner removed (mode 0), doubled (1), or cut to one byte
 * shorter (2).
 */
static uint8_t *
EditNested(const uint8_t *data, size_t len, uint16_t outer, size_t index,
	uint16_t inner, int mode, size_t *outLen)
{
    ProtoReader r;
    ProtoItem it;
    ProtoBuf b;
    size_t seen = 0;
    uint8_t *out;

    proto_buf_init(&b);
    proto_reader_init(&r, data, len);
    while (proto_next(&r, &it) == 1) {
	if (it.tag == outer && ++seen == index) {
	    ProtoReader r2;
	    ProtoItem in;
	    size_t mark = proto_begin(&b, outer);

	    proto_reader_init(&r2, it.val, it.len);
	    while (proto_next(&r2, &in) == 1) {
		if (in.tag == inner && mode == 0) {
		    continue;
		}
		if (in.tag == inner && mode == 2) {
		    proto_put_bytes(&b, in.tag, in.val,
			    in.len ? in.len - 1 : 0);
		    continue;
		}
		proto_put_bytes(&b, in.tag, in.val, in.len);
		if (in.tag == inner && mode == 1) {
		    proto_put_bytes(&b, in.tag, in.val, in.len);
		}
	    }
	    proto_end(&b, mark);
	} else {
	    proto_put_bytes(&b, it.tag, it.val, it.len);
	}
    }
    out = malloc(b.len + 1);
    memcpy(out, b.data, b.len);
    *outLen = b.len;
    proto_buf_free(&b);
    return out;
}

/* ------------------------------------------------------------------ */
/* Sample messages with every field set                                 */
/* ------------------------------------------------------------------ */

static char *
Dup(const char *s)
{
    return strdup(s);
}

static void
SampleRequest(ProtoRequest *m)
{
    static const char *const actions[] = {"PROGRAM", "VERIFY", "ERASE"};
    size_t i;

    memset(m, 0, sizeof(*m));
    m->jobName = Dup("MyProgJob");
    m->taskName = Dup("MyHSMTask");
    strcpy(m->uhsmUuid, "1");
    strcpy(m->mhsmUuid, "10");
    m->internal = 0;
    Fill(m->nonce, 32, 1);
    m->created = 1700000001;
    m->uhsmCert = uhsmCert;
    m->nTickets = 3;
    m->tickets = calloc(3, sizeof(*m->tickets));
    for (i = 0; i < 3; i++) {
	char name[32];

	snprintf(name, sizeof(name), "MyTicket%d", (int) i + 1);
	m->tickets[i].name = Dup(name);
	m->tickets[i].device = Dup("MyDevice");
	m->tickets[i].action = Dup(actions[i]);
	m->tickets[i].maxDevices = i == 2 ? PROTO_UNLIMITED : 10 + (int64_t) i;
    }
}

static void
SampleReply(ProtoReply *m)
{
    size_t i;

    memset(m, 0, sizeof(*m));
    Fill(m->requestDigest, 48, 2);
    m->jobName = Dup("MyProgJob");
    m->taskName = Dup("MyHSMTask");
    strcpy(m->mhsmUuid, "10");
    m->mhsmCert = mhsmCert;
    Fill(m->bindingNonce, 32, 3);
    m->created = 1700000002;
    m->nTickets = 3;
    m->tickets = calloc(3, sizeof(*m->tickets));
    for (i = 0; i < 3; i++) {
	char name[32];

	snprintf(name, sizeof(name), "MyTicket%d", (int) i + 1);
	m->tickets[i].name = Dup(name);
	Fill(m->tickets[i].id, 20, 10 + (int) i);
    }
}

static void
SampleNamed(ProtoNamedBytes **v, size_t *n, const char *prefix, size_t count,
	size_t len)
{
    size_t i;

    *n = count;
    *v = calloc(count, sizeof(**v));
    for (i = 0; i < count; i++) {
	char name[32];

	snprintf(name, sizeof(name), "%s%d", prefix, (int) i + 1);
	(*v)[i].name = Dup(name);
	(*v)[i].data = malloc(len ? len : 1);
	Fill((*v)[i].data, len, (int) i);
	(*v)[i].len = len;
    }
}

static void
SampleBody(ProtoBitstreamBody *m)
{
    memset(m, 0, sizeof(*m));
    m->fabricLen = 5000;
    m->fabric = malloc(5000);
    Fill(m->fabric, 5000, 4);
    SampleNamed(&m->envm, &m->nEnvm, "envm_client", 2, 300);
    SampleNamed(&m->snvm, &m->nSnvm, "snvm_client", 1, 0);
    SampleNamed(&m->security, &m->nSecurity, "setting", 2, 12);
    SampleNamed(&m->keys, &m->nKeys, "UEK", 2, 32);
    m->nPerDevice = 2;
    m->perDevice = calloc(2, sizeof(char *));
    m->perDevice[0] = Dup("UPK1");
    m->perDevice[1] = Dup("UEK3");
}

static void
SampleSecrets(ProtoTicketSecret **s, size_t *n)
{
    size_t i;

    *n = 2;
    *s = calloc(2, sizeof(**s));
    for (i = 0; i < 2; i++) {
	ProtoTicketSecret *t = &(*s)[i];

	Fill(t->id, 20, 10 + (int) i);
	t->action = Dup(i == 0 ? "PROGRAM" : "VERIFY");
	t->maxDevices = i == 0 ? 5 : PROTO_UNLIMITED;
	Fill(t->kip, 32, 20 + (int) i);
	t->keyMode = Dup(i == 0 ? "KFPE" : "DFK");
	Fill(t->designDigest, 48, 5);
	t->generateCoc = (int) (1 - i);
	SampleNamed(&t->baseKeys, &t->nBaseKeys, "UPK", 1 - i, 32);
    }
}

static void
SampleJob(ProtoJob *m)
{
    size_t i;

    memset(m, 0, sizeof(*m));
    m->jobName = Dup("MyProgJob");
    m->taskName = Dup("MyHSMTask");
    m->jobType = Dup("FPExpress");
    strcpy(m->uhsmUuid, "1");
    strcpy(m->mhsmUuid, "10");
    Fill(m->requestDigest, 48, 2);
    Fill(m->bindingNonce, 32, 3);
    Fill(m->mhsmCertFingerprint, 48, 6);
    m->uhsmCert = uhsmCert;
    m->created = 1700000003;
    m->nDevices = 2;
    m->devices = calloc(2, sizeof(*m->devices));
    for (i = 0; i < 2; i++) {
	m->devices[i].name = Dup(i == 0 ? "MyDevice" : "Other");
	m->devices[i].hwLocation = (int64_t) i + 1;
	m->devices[i].family = Dup("SmartFusion2");
	m->devices[i].die = Dup("M2S090TS");
	m->devices[i].bitstream = Dup(i == 0 ? "MyBitstream" : "");
    }
    m->nBitstreams = 1;
    m->bitstreams = calloc(1, sizeof(*m->bitstreams));
    m->bitstreams[0].name = Dup("MyBitstream");
    m->bitstreams[0].type = Dup("MASTER");
    m->bitstreams[0].family = Dup("SmartFusion2");
    m->bitstreams[0].die = Dup("M2S090TS");
    m->bitstreams[0].designName = Dup("top");
    m->bitstreams[0].features = Dup("SECURITY FABRIC ENVM");
    m->bitstreams[0].protocol = Dup("AUTH_CODE");
    m->bitstreams[0].keyMode = Dup("KFPE");
    m->bitstreams[0].generateCoc = 1;
    Fill(m->bitstreams[0].designDigest, 48, 5);
    m->bitstreams[0].cipherLen = 2000;
    m->bitstreams[0].cipher = malloc(2000);
    Fill(m->bitstreams[0].cipher, 2000, 8);
    m->nTickets = 2;
    m->tickets = calloc(2, sizeof(*m->tickets));
    for (i = 0; i < 2; i++) {
	Fill(m->tickets[i].id, 20, 10 + (int) i);
	m->tickets[i].name = Dup(i == 0 ? "MyTicket1" : "MyTicket2");
	m->tickets[i].device = Dup("MyDevice");
	m->tickets[i].action = Dup(i == 0 ? "PROGRAM" : "VERIFY");
	m->tickets[i].maxDevices = i == 0 ? 5 : PROTO_UNLIMITED;
    }
    m->sealedLen = 300;
    m->sealedSecrets = malloc(300);
    Fill(m->sealedSecrets, 300, 9);
}

static void
SampleCoc(ProtoCoc *c, int seed)
{
    memset(c, 0, sizeof(*c));
    Fill(c->dsn, 16, seed);
    Fill(c->ticketId, 20, 10);
    c->action = Dup("PROGRAM");
    Fill(c->designDigest, 48, 5);
    Fill(c->contentDigest, 48, seed + 1);
    Fill(c->codeId, 16, seed + 2);
    c->deviceCounter = 3 + (uint64_t) seed;
    Fill(c->mac, 16, seed + 3);
}

static void
SampleCertifier(ProtoCertifier *c, int seed)
{
    memset(c, 0, sizeof(*c));
    Fill(c->ticketId, 20, 10 + seed);
    c->ticketName = Dup(seed == 0 ? "MyTicket1" : "MyTicket2");
    c->action = Dup("PROGRAM");
    Fill(c->requestDigest, 48, 2);
    strcpy(c->mhsmUuid, "10");
    c->maxDevices = 5;
    c->completed = 4;
    c->pending = 1;
    c->endType = Dup("TERMINATED");
    c->removed = 1700000009;
    Fill(c->signature, 96, seed + 40);
}

static void
SampleStatus(ProtoStatus *m, int isEnd)
{
    size_t i;

    memset(m, 0, sizeof(*m));
    m->jobName = Dup("MyProgJob");
    m->taskName = Dup("MyHSMTask");
    strcpy(m->mhsmUuid, "10");
    Fill(m->requestDigest, 48, 2);
    m->isEnd = isEnd;
    m->endType = isEnd ? Dup("TERMINATED") : NULL;
    m->created = 1700000004;
    m->sequence = 12;
    m->nTickets = 2;
    m->tickets = calloc(2, sizeof(*m->tickets));
    for (i = 0; i < 2; i++) {
	Fill(m->tickets[i].id, 20, 10 + (int) i);
	m->tickets[i].name = Dup(i == 0 ? "MyTicket1" : "MyTicket2");
	m->tickets[i].device = Dup("MyDevice");
	m->tickets[i].action = Dup(i == 0 ? "PROGRAM" : "VERIFY");
	m->tickets[i].maxDevices = i == 0 ? 5 : PROTO_UNLIMITED;
	m->tickets[i].completed = 3;
	m->tickets[i].pending = (int64_t) i;
    }
    m->nCocs = 3;
    m->cocs = calloc(3, sizeof(*m->cocs));
    for (i = 0; i < 3; i++) {
	SampleCoc(&m->cocs[i], (int) i);
    }
    if (isEnd) {
	m->nCertifiers = 2;
	m->certifiers = calloc(2, sizeof(*m->certifiers));
	for (i = 0; i < 2; i++) {
	    SampleCertifier(&m->certifiers[i], (int) i);
	}
    }
}

/* ------------------------------------------------------------------ */
/* Generic checks over an encoded body                                  */
/* ------------------------------------------------------------------ */

typedef int (*DecodeFn)(const uint8_t *body, size_t len, ProtoError *err);

/* Decoders wrapped to one type (each frees what it decoded). */
static int
DecRequest(const uint8_t *b, size_t n, ProtoError *e)
{
    ProtoRequest m;
    int rc = proto_request_decode(b, n, &m, e);

    proto_request_free(&m);
    return rc;
}

static int
DecReply(const uint8_t *b, size_t n, ProtoError *e)
{
    ProtoReply m;
    int rc = proto_reply_decode(b, n, &m, e);

    proto_reply_free(&m);
    return rc;
}

static int
DecJob(const uint8_t *b, size_t n, ProtoError *e)
{
    ProtoJob m;
    int rc = proto_job_decode(b, n, &m, e);

    proto_job_free(&m);
    return rc;
}

static int
DecStatus(const uint8_t *b, size_t n, ProtoError *e)
{
    ProtoStatus m;
    int rc = proto_status_decode(b, n, &m, e);

    proto_status_free(&m);
    return rc;
}

static int
DecBody(const uint8_t *b, size_t n, ProtoError *e)
{
    ProtoBitstreamBody m;
    int rc = proto_bitstream_body_decode(b, n, &m, e);

    proto_bitstream_body_free(&m);
    return rc;
}

static int
DecSecrets(const uint8_t *b, size_t n, ProtoError *e)
{
    ProtoTicketSecret *s = NULL;
    size_t k = 0;
    int rc = proto_ticket_secrets_decode(b, n, &s, &k, e);

    if (rc == 0) {
	proto_ticket_secrets_free(s, k);
    }
    CHECK(rc == 0 || s == NULL);
    return rc;
}

static int
DecCert(const uint8_t *b, size_t n, ProtoError *e)
{
    ProtoCert c;

    return proto_cert_decode(b, n, &c, e);
}

static int
DecCoc(const uint8_t *b, size_t n, ProtoError *e)
{
    ProtoCoc c;
    int rc = proto_coc_decode(b, n, &c, e);

    proto_coc_free(&c);
    return rc;
}

static int
DecCertifier(const uint8_t *b, size_t n, ProtoError *e)
{
    ProtoCertifier c;
    int rc = proto_certifier_decode(b, n, &c, e);

    proto_certifier_free(&c);
    return rc;
}

/*
 * CheckFields --
 *	Over the top-level tags given (with their names): each one missing
 *	(unless optional), twice, and (fixed-size ones) one byte short, is
 *	refused with "<where>: field '<name>' ..." ; an unknown tag and every
 *	truncation are handled.
 */
typedef struct FieldSpec {
    uint16_t tag;
    const char *name;
    int flags;			/* 1: optional; 2: repeated (no twice check);
				 * 4: size-checked */
} FieldSpec;

static void
CheckFields(const char *what, DecodeFn dec, const uint8_t *body, size_t len,
	const char *where, const FieldSpec *fields)
{
    ProtoError err;
    uint8_t *edit;
    size_t editLen, cut;
    char want[200];
    int count;

    CHECK(dec(body, len, &err) == 0);
    for (; fields->name != NULL; fields++) {
	edit = Without(body, len, fields->tag, &editLen, &count);
	CHECK(count >= 1);
	if (!(fields->flags & 3)) {
	    snprintf(want, sizeof(want), "%s: field '%s' is missing", where,
		    fields->name);
	    CHECK(dec(edit, editLen, &err) == -1);
	    if (strcmp(err.msg, want) != 0) {
		fprintf(stderr, "%s: want \"%s\", got \"%s\"\n", what, want,
			err.msg);
		CHECK(0);
	    }
	}
	free(edit);
	if (!(fields->flags & 2)) {
	    edit = Twice(body, len, fields->tag, &editLen);
	    snprintf(want, sizeof(want), "%s: field '%s' is present twice",
		    where, fields->name);
	    CHECK(dec(edit, editLen, &err) == -1);
	    if (strcmp(err.msg, want) != 0) {
		fprintf(stderr, "%s: want \"%s\", got \"%s\"\n", what, want,
			err.msg);
		CHECK(0);
	    }
	    free(edit);
	}
    }
    /* An unknown tag is skipped. */
    edit = malloc(len + 10);
    memcpy(edit, body, len);
    memcpy(edit + len, "\x7f\x7f\x00\x00\x00\x04" "abcd", 10);
    CHECK(dec(edit, len + 10, &err) == 0);
    free(edit);
    /* Every truncation: a clean refusal (the sanitizer build checks that
     * nothing is read past the end or leaked), except at an item boundary
     * after the required fields, which leaves a shorter valid record (the
     * envelope's length and authenticator catch those). */
    for (cut = 0; cut < len; cut += (len > 4000 ? 13 : 1)) {
	ProtoReader r;
	ProtoItem it;
	int boundary = cut == 0;

	proto_reader_init(&r, body, len);
	while (proto_next(&r, &it) == 1) {
	    if ((size_t) (r.p - body) == cut) {
		boundary = 1;
	    }
	}
	edit = malloc(cut ? cut : 1);
	memcpy(edit, body, cut);
	if (dec(edit, cut, &err) == 0) {
	    CHECK(boundary);
	} else {
	    CHECK(strncmp(err.msg, where, strlen(where)) == 0);
	}
	free(edit);
    }
    /* Flipped bits: refused or accepted, never a crash. */
    edit = malloc(len);
    memcpy(edit, body, len);
    for (cut = 0; cut < len * 8; cut += (len > 4000 ? 97 : 3)) {
	edit[cut / 8] ^= (uint8_t) (1u << (cut % 8));
	(void) dec(edit, len, &err);
	edit[cut / 8] ^= (uint8_t) (1u << (cut % 8));
    }
    free(edit);
}

/* ------------------------------------------------------------------ */
/* Certificates                                                         */
/* ------------------------------------------------------------------ */

static void
TestCert(void)
{
    ProtoCert c, d, root;
    ProtoBuf b, b2;
    ProtoError err;
    uint8_t fp1[48], fp2[48], other[96];
    static const FieldSpec fields[] = {
	{1, "kind", 0}, {2, "subject", 0}, {3, "die", 0}, {4, "signKey", 0},
	{6, "serial", 0}, {7, "issued", 0}, {8, "signature", 0}, {0, NULL, 0}
    };
    EVP_PKEY *k = NULL;

    CHECK(proto_cert_verify(&uhsmCert, PROTO_CERT_UHSM, rootPub, &err) == 0);
    CHECK(proto_cert_verify(&mhsmCert, PROTO_CERT_MHSM, rootPub, &err) == 0);

    /* Round trip, deterministic, fingerprint. */
    proto_buf_init(&b);
    proto_buf_init(&b2);
    CHECK(proto_cert_encode(&mhsmCert, &b) == 0);
    CHECK(proto_cert_encode(&mhsmCert, &b2) == 0);
    CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
    CHECK(proto_cert_decode(b.data, b.len, &c, &err) == 0);
    CHECK(memcmp(&c, &mhsmCert, sizeof(c)) == 0);
    CHECK(proto_cert_fingerprint(&mhsmCert, fp1) == 0);
    CHECK(proto_sha384(b.data, b.len, fp2) == 0);
    CHECK_MEM(fp1, fp2, 48);
    proto_buf_free(&b);
    proto_buf_free(&b2);

    /* A device certificate: every field. */
    proto_p384_generate(&k, other, &err);
    MakeCertDie(&c, PROTO_CERT_DEVICE, "00112233445566778899aabbccddeeff",
	    "M2S090", other, NULL);
    CHECK(proto_cert_verify(&c, PROTO_CERT_DEVICE, rootPub, &err) == 0);
    proto_buf_init(&b);
    CHECK(proto_cert_encode(&c, &b) == 0);
    CheckFields("cert", DecCert, b.data, b.len, "certificate", fields);
    proto_buf_free(&b);
    EVP_PKEY_free(k);

    /* Shape refusals by the decoder and by verify. */
    d = uhsmCert;
    d.hasEncKey = 1;
    memcpy(d.encKey, mhsmEncPub, 96);
    proto_buf_init(&b);
    CHECK(proto_cert_encode(&d, &b) == -1);
    proto_buf_free(&b);
    CHECK(proto_cert_verify(&d, PROTO_CERT_UHSM, rootPub, &err) == -1);
    CHECK(strstr(err.msg, "only M-HSM certificates carry a sealing key"));
    d = uhsmCert;
    strcpy(d.subject, "0A");
    CHECK(proto_cert_verify(&d, PROTO_CERT_UHSM, rootPub, &err) == -1);
    CHECK(strstr(err.msg, "canonical form") != NULL);
    /* Tampered fields, wrong root, wrong kind. */
    d = mhsmCert;
    d.issued++;
    CHECK(proto_cert_verify(&d, PROTO_CERT_MHSM, rootPub, &err) == -1);
    CHECK(strstr(err.msg, "not issued by the trusted vendor root"));
    d = mhsmCert;
    d.signature[10] ^= 1;
    CHECK(proto_cert_verify(&d, PROTO_CERT_MHSM, rootPub, &err) == -1);
    CHECK(proto_cert_verify(&mhsmCert, PROTO_CERT_MHSM, uhsmPub, &err) == -1);
    CHECK(proto_cert_verify(&mhsmCert, PROTO_CERT_DEVICE, rootPub, &err)
	    == -1);
    CHECK(strcmp(err.msg, "the certificate of 10 is an M-HSM certificate, "
	    "not a device certificate") == 0);
    d = mhsmCert;
    d.signKey[3] ^= 1;		/* off the curve */
    CHECK(proto_cert_verify(&d, PROTO_CERT_MHSM, rootPub, &err) == -1);
    CHECK(strstr(err.msg, "not a P-384 point") != NULL);

    /* The root: self-signed, must be the trusted key itself. */
    MakeCert(&root, PROTO_CERT_ROOT, "spps vendor root", rootPub, NULL);
    CHECK(proto_cert_verify(&root, PROTO_CERT_ROOT, rootPub, &err) == 0);
    CHECK(proto_cert_verify(&root, PROTO_CERT_ROOT, uhsmPub, &err) == -1);
    CHECK(strstr(err.msg, "is not the trusted vendor root") != NULL);
    /* Decoder refusals naming the field. */
    {
	static const uint8_t badKind[] = {0, 1, 0, 0, 0, 1, 9};

	CHECK(proto_cert_decode(badKind, sizeof(badKind), &d, &err) == -1);
	CHECK(strcmp(err.msg, "certificate: field 'kind' is 9, not a "
		"certificate kind") == 0);
    }
    proto_buf_init(&b);
    CHECK(proto_cert_encode(&uhsmCert, &b) == 0);
    {
	uint8_t *e;
	size_t eLen;

	/* A die on a U-HSM certificate. */
	e = malloc(b.len + 12);
	memcpy(e, b.data, b.len);
	memcpy(e + b.len, "\x00\x03\x00\x00\x00\x06M2S090", 12);
	eLen = b.len + 12;
	CHECK(proto_cert_decode(e, eLen, &d, &err) == -1);
	CHECK(strstr(err.msg, "field 'die'") != NULL);
	free(e);
    }
    proto_buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* Messages                                                             */
/* ------------------------------------------------------------------ */

static void
TestRequest(void)
{
    ProtoRequest m, d;
    ProtoBuf b, b2;
    ProtoError err;
    uint8_t *e;
    size_t eLen, i;
    static const FieldSpec fields[] = {
	{1, "jobName", 0}, {2, "taskName", 0}, {3, "uhsmUuid", 0},
	{4, "mhsmUuid", 0}, {5, "internal", 0}, {6, "nonce", 0},
	{7, "created", 0}, {8, "uhsmCert", 0}, {9, "ticket", 2},
	{0, NULL, 0}
    };

    SampleRequest(&m);
    proto_buf_init(&b);
    proto_buf_init(&b2);
    CHECK(proto_request_encode(&m, &b) == 0);
    CHECK(proto_request_encode(&m, &b2) == 0);
    CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
    CHECK(proto_request_decode(b.data, b.len, &d, &err) == 0);
    CHECK(strcmp(d.jobName, "MyProgJob") == 0);
    CHECK(strcmp(d.taskName, "MyHSMTask") == 0);
    CHECK(strcmp(d.uhsmUuid, "1") == 0 && strcmp(d.mhsmUuid, "10") == 0);
    CHECK(d.internal == 0 && d.created == m.created);
    CHECK_MEM(d.nonce, m.nonce, 32);
    CHECK(memcmp(&d.uhsmCert, &uhsmCert, sizeof(uhsmCert)) == 0);
    CHECK(d.nTickets == 3);
    for (i = 0; i < 3 && i < d.nTickets; i++) {
	CHECK(strcmp(d.tickets[i].name, m.tickets[i].name) == 0);
	CHECK(strcmp(d.tickets[i].device, m.tickets[i].device) == 0);
	CHECK(strcmp(d.tickets[i].action, m.tickets[i].action) == 0);
	CHECK(d.tickets[i].maxDevices == m.tickets[i].maxDevices);
    }
    /* Decode then encode gives the same bytes. */
    proto_buf_free(&b2);
    proto_buf_init(&b2);
    CHECK(proto_request_encode(&d, &b2) == 0);
    CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
    proto_buf_free(&b2);
    proto_request_free(&d);

    CheckFields("request", DecRequest, b.data, b.len, "job request file",
	    fields);
    /* Ticket fields. */
    e = EditNested(b.data, b.len, 9, 2, 3, 0, &eLen);
    CHECK(DecRequest(e, eLen, &err) == -1);
    CHECK(strcmp(err.msg, "job request file: ticket 2: field 'action' is "
	    "missing") == 0);
    free(e);
    e = EditNested(b.data, b.len, 9, 3, 1, 1, &eLen);
    CHECK(DecRequest(e, eLen, &err) == -1);
    CHECK(strcmp(err.msg, "job request file: ticket 3: field 'name' is "
	    "present twice") == 0);
    free(e);
    e = EditNested(b.data, b.len, 9, 1, 4, 2, &eLen);
    CHECK(DecRequest(e, eLen, &err) == -1);
    CHECK(strcmp(err.msg, "job request file: ticket 1: field 'maxDevices' "
	    "is 7 bytes, must be 8") == 0);
    free(e);
    proto_buf_free(&b);

    /* Values refused by the encoder and the decoder. */
#define ENCODE_FAILS(setup, text)					\
    do {								\
	ProtoRequest x;							\
	uint8_t *img = NULL;						\
	size_t imgLen;							\
	SampleRequest(&x);						\
	setup;								\
	proto_buf_init(&b);						\
	CHECK(proto_request_encode(&x, &b) == -1);			\
	proto_buf_free(&b);						\
	CHECK(proto_request_write(&x, SoftSign, uhsmKey, &img, &imgLen,	\
		&err) == -1);						\
	CHECK(img == NULL);						\
	CHECK(strstr(err.msg, text) != NULL);				\
	if (strstr(err.msg, text) == NULL) {				\
	    fprintf(stderr, "  got: %s\n", err.msg);			\
	}								\
	proto_request_free(&x);						\
    } while (0)
    ENCODE_FAILS((free(x.tickets[1].action), x.tickets[1].action = Dup("BURN")),
	    "ticket 2: field 'action' is 'BURN', not PROGRAM, VERIFY or ERASE");
    ENCODE_FAILS(x.tickets[0].maxDevices = 0,
	    "ticket 1: field 'maxDevices' is 0: must be at least 1, or -1 "
	    "for unlimited");
    ENCODE_FAILS(x.tickets[0].maxDevices = -2, "is -2");
    ENCODE_FAILS((free(x.tickets[2].name),
	    x.tickets[2].name = Dup("MyTicket1")),
	    "two tickets are named 'MyTicket1'");
    ENCODE_FAILS((free(x.jobName), x.jobName = Dup("")), "a required field");
    ENCODE_FAILS((free(x.jobName), x.jobName = NULL), "a required field");
    ENCODE_FAILS(strcpy(x.uhsmUuid, "0x1"), "'0x1', not a UUID in "
	    "canonical form");
    ENCODE_FAILS((free(x.taskName), x.taskName = Dup("bad\xff")),
	    "field 'taskName' is not valid UTF-8");
    ENCODE_FAILS((free(x.taskName), x.taskName = malloc(300),
	    memset(x.taskName, 'a', 299), x.taskName[299] = '\0'),
	    "field 'taskName' is 299 bytes long, at most 256");
    ENCODE_FAILS(x.uhsmCert.kind = (ProtoCertKind) 0, "a required field");
#undef ENCODE_FAILS

    /* Internal requests may leave out the M-HSM UUID. */
    m.internal = 1;
    m.mhsmUuid[0] = '\0';
    proto_buf_init(&b);
    CHECK(proto_request_encode(&m, &b) == 0);
    CHECK(proto_request_decode(b.data, b.len, &d, &err) == 0);
    CHECK(d.internal == 1 && d.mhsmUuid[0] == '\0');
    proto_request_free(&d);
    proto_buf_free(&b);
    proto_request_free(&m);
}

static void
TestOversized(void)
{
    ProtoBuf b;
    ProtoRequest m, d;
    ProtoError err;
    size_t i, mark;

    /* 4097 tickets: refused by count, before any allocation per ticket. */
    SampleRequest(&m);
    proto_buf_init(&b);
    CHECK(proto_request_encode(&m, &b) == 0);
    for (i = 0; i < 4097; i++) {
	mark = proto_begin(&b, 9);
	proto_put_str(&b, 1, "T");
	proto_end(&b, mark);
    }
    CHECK(proto_request_decode(b.data, b.len, &d, &err) == -1);
    CHECK(strcmp(err.msg, "job request file: more than 4096 tickets") == 0);
    proto_buf_free(&b);

    /* 4096 distinct tickets are fine. */
    for (i = 0; i < m.nTickets; i++) {
	free(m.tickets[i].name);
	free(m.tickets[i].device);
	free(m.tickets[i].action);
    }
    free(m.tickets);
    m.nTickets = 4096;
    m.tickets = calloc(4096, sizeof(*m.tickets));
    for (i = 0; i < 4096; i++) {
	char name[16];

	snprintf(name, sizeof(name), "T%d", (int) i);
	m.tickets[i].name = Dup(name);
	m.tickets[i].device = Dup("D");
	m.tickets[i].action = Dup("ERASE");
	m.tickets[i].maxDevices = 1;
    }
    proto_buf_init(&b);
    CHECK(proto_request_encode(&m, &b) == 0);
    CHECK(proto_request_decode(b.data, b.len, &d, &err) == 0);
    CHECK(d.nTickets == 4096);
    proto_request_free(&d);
    proto_buf_free(&b);
    proto_request_free(&m);

    /* A nested length past its record; a top-level one. */
    SampleRequest(&m);
    proto_buf_init(&b);
    CHECK(proto_request_encode(&m, &b) == 0);
    {
	static const uint8_t bad[] = {0, 9, 0, 0, 0, 8, 0, 1, 0, 0, 0, 9, 'a',
	    'b'};
	uint8_t *e = malloc(b.len + sizeof(bad));

	memcpy(e, b.data, b.len);
	memcpy(e + b.len, bad, sizeof(bad));
	CHECK(proto_request_decode(e, b.len + sizeof(bad), &d, &err) == -1);
	CHECK(strcmp(err.msg, "job request file: ticket 4: malformed record: "
		"item 1 runs past the end (8 bytes left)") == 0);
	e[b.len + 5] = 9;
	CHECK(proto_request_decode(e, b.len + sizeof(bad), &d, &err) == -1);
	CHECK(strcmp(err.msg, "job request file: malformed record: item 12 "
		"runs past the end (14 bytes left)") == 0);
	free(e);
    }
    proto_buf_free(&b);
    proto_request_free(&m);
}

static void
TestReply(void)
{
    ProtoReply m, d;
    ProtoBuf b, b2;
    ProtoError err;
    uint8_t *e;
    size_t eLen;
    static const FieldSpec fields[] = {
	{1, "requestDigest", 0}, {2, "jobName", 0}, {3, "taskName", 0},
	{4, "mhsmUuid", 0}, {5, "mhsmCert", 0}, {6, "bindingNonce", 0},
	{7, "created", 0}, {8, "ticket", 2}, {0, NULL, 0}
    };

    SampleReply(&m);
    proto_buf_init(&b);
    CHECK(proto_reply_encode(&m, &b) == 0);
    CHECK(proto_reply_decode(b.data, b.len, &d, &err) == 0);
    CHECK_MEM(d.requestDigest, m.requestDigest, 48);
    CHECK(strcmp(d.jobName, m.jobName) == 0);
    CHECK(strcmp(d.taskName, m.taskName) == 0);
    CHECK(strcmp(d.mhsmUuid, "10") == 0);
    CHECK(memcmp(&d.mhsmCert, &mhsmCert, sizeof(mhsmCert)) == 0);
    CHECK_MEM(d.bindingNonce, m.bindingNonce, 32);
    CHECK(d.created == m.created && d.nTickets == 3);
    CHECK(d.nTickets == 3 && strcmp(d.tickets[2].name, "MyTicket3") == 0
	    && memcmp(d.tickets[2].id, m.tickets[2].id, 20) == 0);
    proto_buf_init(&b2);
    CHECK(proto_reply_encode(&d, &b2) == 0);
    CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
    proto_buf_free(&b2);
    proto_reply_free(&d);
    CheckFields("reply", DecReply, b.data, b.len, "job reply file", fields);
    e = EditNested(b.data, b.len, 8, 2, 2, 2, &eLen);
    CHECK(DecReply(e, eLen, &err) == -1);
    CHECK(strcmp(err.msg, "job reply file: ticket 2: field 'id' is 19 "
	    "bytes, must be 20") == 0);
    free(e);
    e = EditNested(b.data, b.len, 5, 1, 4, 0, &eLen);
    CHECK(DecReply(e, eLen, &err) == -1);
    CHECK(strcmp(err.msg, "job reply file: field 'mhsmCert': field "
	    "'signKey' is missing") == 0);
    free(e);
    proto_buf_free(&b);
    /* Duplicate ticket ids. */
    memcpy(m.tickets[1].id, m.tickets[0].id, 20);
    proto_buf_init(&b);
    CHECK(proto_reply_encode(&m, &b) == -1);
    proto_buf_free(&b);
    proto_reply_free(&m);
}

static void
TestBody(void)
{
    ProtoBitstreamBody m, d;
    ProtoBuf b, b2;
    ProtoError err;
    uint8_t *e;
    size_t eLen;
    static const FieldSpec fields[] = {
	{1, "fabric", 1}, {2, "eNVM client", 2}, {3, "sNVM", 2},
	{4, "security", 2}, {5, "key", 2}, {6, "perDevice", 2}, {0, NULL, 0}
    };

    SampleBody(&m);
    proto_buf_init(&b);
    CHECK(proto_bitstream_body_encode(&m, &b) == 0);
    CHECK(proto_bitstream_body_decode(b.data, b.len, &d, &err) == 0);
    CHECK(d.fabricLen == 5000 && memcmp(d.fabric, m.fabric, 5000) == 0);
    CHECK(d.nEnvm == 2 && strcmp(d.envm[1].name, "envm_client2") == 0
	    && d.envm[1].len == 300
	    && memcmp(d.envm[1].data, m.envm[1].data, 300) == 0);
    CHECK(d.nSnvm == 1 && d.snvm[0].len == 0);
    CHECK(d.nSecurity == 2 && d.security[0].len == 12);
    CHECK(d.nKeys == 2 && d.keys[1].len == 32
	    && memcmp(d.keys[1].data, m.keys[1].data, 32) == 0);
    CHECK(d.nPerDevice == 2 && strcmp(d.perDevice[1], "UEK3") == 0);
    proto_buf_init(&b2);
    CHECK(proto_bitstream_body_encode(&d, &b2) == 0);
    CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
    proto_buf_free(&b2);
    proto_bitstream_body_free(&d);
    CheckFields("body", DecBody, b.data, b.len, "bitstream body", fields);
    e = EditNested(b.data, b.len, 5, 2, 2, 2, &eLen);
    CHECK(DecBody(e, eLen, &err) == -1);
    CHECK(strcmp(err.msg, "bitstream body: key 2: field 'key' is 31 bytes "
	    "long, at most 32 are allowed") == 0
	    || strcmp(err.msg, "bitstream body: key 2: field 'key' is 31 "
	    "bytes, must be 32") == 0);
    free(e);
    e = EditNested(b.data, b.len, 2, 1, 1, 0, &eLen);
    CHECK(DecBody(e, eLen, &err) == -1);
    CHECK(strcmp(err.msg, "bitstream body: eNVM client 1: field 'name' is "
	    "missing") == 0);
    free(e);
    proto_buf_free(&b);
    /* A key of the wrong size, duplicate names: refused by the encoder. */
    m.keys[0].len = 16;
    proto_buf_init(&b);
    CHECK(proto_bitstream_body_encode(&m, &b) == -1);
    proto_buf_free(&b);
    m.keys[0].len = 32;
    free(m.perDevice[1]);
    m.perDevice[1] = Dup("UPK1");
    proto_buf_init(&b);
    CHECK(proto_bitstream_body_encode(&m, &b) == -1);
    proto_buf_free(&b);
    proto_bitstream_body_free(&m);
    /* An empty body (nothing set) is valid. */
    memset(&m, 0, sizeof(m));
    proto_buf_init(&b);
    CHECK(proto_bitstream_body_encode(&m, &b) == 0 && b.len == 0);
    CHECK(proto_bitstream_body_decode(b.data, b.len, &d, &err) == 0);
    CHECK(d.fabric == NULL && d.nEnvm == 0);
    proto_bitstream_body_free(&d);
    proto_buf_free(&b);
}

static void
TestSecrets(void)
{
    ProtoTicketSecret *s, *d = NULL;
    size_t n, dn = 0;
    ProtoBuf b, b2;
    ProtoError err;
    uint8_t *e;
    size_t eLen;
    static const struct { uint16_t tag; const char *name; } inner[] = {
	{1, "id"}, {2, "action"}, {3, "maxDevices"}, {4, "kip"},
	{5, "keyMode"}, {6, "designDigest"}, {7, "generateCoc"}, {0, NULL}
    };
    int i;

    SampleSecrets(&s, &n);
    proto_buf_init(&b);
    CHECK(proto_ticket_secrets_encode(s, n, &b) == 0);
    CHECK(proto_ticket_secrets_decode(b.data, b.len, &d, &dn, &err) == 0);
    CHECK(dn == 2);
    if (dn == 2) {
	CHECK_MEM(d[0].id, s[0].id, 20);
	CHECK(strcmp(d[0].action, "PROGRAM") == 0 && d[0].maxDevices == 5);
	CHECK_MEM(d[0].kip, s[0].kip, 32);
	CHECK(strcmp(d[0].keyMode, "KFPE") == 0);
	CHECK_MEM(d[0].designDigest, s[0].designDigest, 48);
	CHECK(d[0].generateCoc == 1 && d[1].generateCoc == 0);
	CHECK(d[0].nBaseKeys == 1 && strcmp(d[0].baseKeys[0].name, "UPK1")
		== 0 && memcmp(d[0].baseKeys[0].data, s[0].baseKeys[0].data,
		32) == 0);
	CHECK(d[1].nBaseKeys == 0 && d[1].maxDevices == PROTO_UNLIMITED);
	proto_buf_init(&b2);
	CHECK(proto_ticket_secrets_encode(d, dn, &b2) == 0);
	CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
	proto_buf_free(&b2);
	proto_ticket_secrets_free(d, dn);
    }
    for (i = 0; inner[i].name != NULL; i++) {
	char want[160];

	e = EditNested(b.data, b.len, 1, 2, inner[i].tag, 0, &eLen);
	snprintf(want, sizeof(want), "ticket secrets: ticket 2: field '%s' is "
		"missing", inner[i].name);
	CHECK(DecSecrets(e, eLen, &err) == -1);
	CHECK(strcmp(err.msg, want) == 0);
	free(e);
	e = EditNested(b.data, b.len, 1, 1, inner[i].tag, 1, &eLen);
	CHECK(DecSecrets(e, eLen, &err) == -1);
	CHECK(strstr(err.msg, "present twice") != NULL);
	free(e);
    }
    {
	static const FieldSpec fields[] = {{1, "ticket", 2}, {0, NULL, 0}};

	CheckFields("secrets", DecSecrets, b.data, b.len, "ticket secrets",
		fields);
    }
    proto_buf_free(&b);
    /* An empty list is valid. */
    proto_buf_init(&b);
    CHECK(proto_ticket_secrets_encode(NULL, 0, &b) == 0 && b.len == 0);
    CHECK(proto_ticket_secrets_decode(b.data, 0, &d, &dn, &err) == 0
	    && dn == 0);
    proto_ticket_secrets_free(d, dn);
    proto_buf_free(&b);
    /* A key mode that is not one. */
    free(s[1].keyMode);
    s[1].keyMode = Dup("KLK");
    proto_buf_init(&b);
    CHECK(proto_ticket_secrets_encode(s, n, &b) == -1);
    proto_buf_free(&b);
    proto_ticket_secrets_free(s, n);
}

static void
TestJob(void)
{
    ProtoJob m, d;
    ProtoBuf b, b2;
    ProtoError err;
    uint8_t *e;
    size_t eLen;
    static const FieldSpec fields[] = {
	{1, "jobName", 0}, {2, "taskName", 0}, {3, "jobType", 0},
	{4, "uhsmUuid", 0}, {5, "mhsmUuid", 0}, {6, "requestDigest", 0},
	{7, "bindingNonce", 0}, {8, "mhsmCertFingerprint", 0},
	{9, "uhsmCert", 0}, {10, "created", 0}, {11, "device", 2},
	{12, "bitstream", 2}, {14, "sealedSecrets", 0}, {0, NULL, 0}
    };
    static const struct { uint16_t tag; const char *name; } bsFields[] = {
	{1, "name"}, {2, "type"}, {3, "family"}, {4, "die"},
	{5, "designName"}, {6, "features"}, {7, "protocol"}, {8, "keyMode"},
	{9, "generateCoc"}, {10, "designDigest"}, {11, "cipher"}, {0, NULL}
    };
    int i;

    SampleJob(&m);
    proto_buf_init(&b);
    CHECK(proto_job_encode(&m, &b) == 0);
    CHECK(proto_job_decode(b.data, b.len, &d, &err) == 0);
    CHECK(strcmp(d.jobType, "FPExpress") == 0);
    CHECK(strcmp(d.uhsmUuid, "1") == 0 && strcmp(d.mhsmUuid, "10") == 0);
    CHECK_MEM(d.mhsmCertFingerprint, m.mhsmCertFingerprint, 48);
    CHECK(d.nDevices == 2 && d.devices[1].hwLocation == 2
	    && strcmp(d.devices[1].bitstream, "") == 0);
    CHECK(d.nBitstreams == 1 && d.bitstreams[0].cipherLen == 2000
	    && strcmp(d.bitstreams[0].features, "SECURITY FABRIC ENVM") == 0
	    && d.bitstreams[0].generateCoc == 1
	    && strcmp(d.bitstreams[0].keyMode, "KFPE") == 0);
    CHECK(d.nTickets == 2 && d.tickets[1].maxDevices == PROTO_UNLIMITED);
    CHECK(d.sealedLen == 300 && memcmp(d.sealedSecrets, m.sealedSecrets, 300)
	    == 0);
    proto_buf_init(&b2);
    CHECK(proto_job_encode(&d, &b2) == 0);
    CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
    proto_buf_free(&b2);
    proto_job_free(&d);
    CheckFields("job", DecJob, b.data, b.len, "job file", fields);
    for (i = 0; bsFields[i].name != NULL; i++) {
	char want[160];

	e = EditNested(b.data, b.len, 12, 1, bsFields[i].tag, 0, &eLen);
	snprintf(want, sizeof(want), "job file: bitstream 1: field '%s' is "
		"missing", bsFields[i].name);
	CHECK(DecJob(e, eLen, &err) == -1);
	CHECK(strcmp(err.msg, want) == 0);
	free(e);
    }
    e = EditNested(b.data, b.len, 13, 2, 4, 0, &eLen);
    CHECK(DecJob(e, eLen, &err) == -1);
    CHECK(strcmp(err.msg, "job file: ticket 2: field 'action' is missing")
	    == 0);
    free(e);
    e = EditNested(b.data, b.len, 11, 2, 2, 0, &eLen);
    CHECK(DecJob(e, eLen, &err) == -1);
    CHECK(strcmp(err.msg, "job file: device 2: field 'hwLocation' is "
	    "missing") == 0);
    free(e);
    proto_buf_free(&b);

    /* Cross references and values. */
    free(m.tickets[1].device);
    m.tickets[1].device = Dup("Nowhere");
    proto_buf_init(&b);
    CHECK(proto_job_encode(&m, &b) == -1);
    proto_buf_free(&b);
    {
	uint8_t *img = NULL;
	size_t imgLen;

	CHECK(proto_job_write(&m, SoftSign, uhsmKey, &img, &imgLen, &err)
		== -1);
	CHECK(strcmp(err.msg, "job file: ticket 2: device 'Nowhere' is not in "
		"the job") == 0);
	free(m.tickets[1].device);
	m.tickets[1].device = Dup("MyDevice");
	free(m.devices[1].bitstream);
	m.devices[1].bitstream = Dup("Missing");
	CHECK(proto_job_write(&m, SoftSign, uhsmKey, &img, &imgLen, &err)
		== -1);
	CHECK(strcmp(err.msg, "job file: device 2: bitstream 'Missing' is not "
		"in the job") == 0);
	free(m.devices[1].bitstream);
	m.devices[1].bitstream = Dup("");
	m.devices[0].hwLocation = -1;
	CHECK(proto_job_write(&m, SoftSign, uhsmKey, &img, &imgLen, &err)
		== -1);
	CHECK(strcmp(err.msg, "job file: device 1: field 'hwLocation' is "
		"negative (-1)") == 0);
	m.devices[0].hwLocation = 1;
	free(m.bitstreams[0].keyMode);
	m.bitstreams[0].keyMode = NULL;	/* written as "" */
	CHECK(proto_job_write(&m, SoftSign, uhsmKey, &img, &imgLen, &err)
		== 0);
	free(img);
    }
    proto_job_free(&m);
}

static void
TestStatus(void)
{
    ProtoStatus m, d;
    ProtoBuf b, b2;
    ProtoError err;
    uint8_t *e;
    size_t eLen;
    static const FieldSpec fields[] = {
	{1, "jobName", 0}, {2, "taskName", 0}, {3, "mhsmUuid", 0},
	{4, "requestDigest", 0}, {5, "isEnd", 0}, {6, "endType", 0},
	{7, "created", 0}, {8, "sequence", 0}, {9, "ticket", 2},
	{10, "CoC", 2}, {11, "certifier", 2}, {0, NULL, 0}
    };
    static const FieldSpec cocFields[] = {
	{1, "dsn", 0}, {2, "ticketId", 0}, {3, "action", 0},
	{4, "designDigest", 0}, {5, "contentDigest", 0}, {6, "codeId", 0},
	{7, "deviceCounter", 0}, {8, "mac", 0}, {0, NULL, 0}
    };
    static const FieldSpec ecFields[] = {
	{1, "ticketId", 0}, {2, "ticketName", 0}, {3, "action", 0},
	{4, "requestDigest", 0}, {5, "mhsmUuid", 0}, {6, "maxDevices", 0},
	{7, "completed", 0}, {8, "pending", 0}, {9, "endType", 0},
	{10, "removed", 0}, {11, "signature", 0}, {0, NULL, 0}
    };

    SampleStatus(&m, 1);
    proto_buf_init(&b);
    CHECK(proto_status_encode(&m, &b) == 0);
    CHECK(proto_status_decode(b.data, b.len, &d, &err) == 0);
    CHECK(d.isEnd == 1 && strcmp(d.endType, "TERMINATED") == 0);
    CHECK(d.sequence == 12 && d.nTickets == 2 && d.tickets[1].pending == 1);
    CHECK(d.nCocs == 3 && memcmp(&d.cocs[2].mac, m.cocs[2].mac, 16) == 0
	    && d.cocs[2].deviceCounter == 5);
    CHECK(d.nCertifiers == 2 && d.certifiers[1].completed == 4
	    && memcmp(d.certifiers[1].signature, m.certifiers[1].signature,
		96) == 0);
    proto_buf_init(&b2);
    CHECK(proto_status_encode(&d, &b2) == 0);
    CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
    proto_buf_free(&b2);
    proto_status_free(&d);
    CheckFields("status", DecStatus, b.data, b.len, "job status file",
	    fields);
    e = EditNested(b.data, b.len, 10, 3, 8, 0, &eLen);
    CHECK(DecStatus(e, eLen, &err) == -1);
    CHECK(strcmp(err.msg, "job status file: CoC 3: field 'mac' is missing")
	    == 0);
    free(e);
    e = EditNested(b.data, b.len, 11, 2, 7, 2, &eLen);
    CHECK(DecStatus(e, eLen, &err) == -1);
    CHECK(strcmp(err.msg, "job status file: certifier 2: field 'completed' "
	    "is 7 bytes, must be 8") == 0);
    free(e);
    proto_buf_free(&b);

    /* Stand-alone CoC and certifier records. */
    proto_buf_init(&b);
    CHECK(proto_coc_encode(&m.cocs[0], &b) == 0);
    CheckFields("coc", DecCoc, b.data, b.len, "CoC", cocFields);
    proto_buf_free(&b);
    proto_buf_init(&b);
    CHECK(proto_certifier_encode(&m.certifiers[0], &b) == 0);
    CheckFields("certifier", DecCertifier, b.data, b.len,
	    "job end certifier", ecFields);
    proto_buf_free(&b);

    /* A plain status has no end type; counts are never negative. */
    proto_status_free(&m);
    SampleStatus(&m, 0);
    proto_buf_init(&b);
    CHECK(proto_status_encode(&m, &b) == 0);
    CHECK(proto_find(b.data, b.len, 6, &(ProtoItem){0}) == 0);
    proto_buf_free(&b);
    m.tickets[0].completed = -1;
    proto_buf_init(&b);
    CHECK(proto_status_encode(&m, &b) == -1);
    proto_buf_free(&b);
    proto_status_free(&m);
}

/* ------------------------------------------------------------------ */
/* Files                                                                */
/* ------------------------------------------------------------------ */

/* Every truncation and a flipped bit at many places: refused cleanly.
 * Returns how many flipped images were (wrongly) accepted. */
typedef int (*ReadFn)(const uint8_t *img, size_t len, ProtoError *err);

static int
Damage(const uint8_t *img, size_t len, ReadFn rd)
{
    uint8_t *copy = malloc(len);
    ProtoError err;
    size_t i, step;
    int accepted = 0;

    for (i = 0; i < len; i++) {
	CHECK(rd(img, i, &err) == -1);
    }
    memcpy(copy, img, len);
    step = len / 200 + 1;
    for (i = 0; i < len * 8; i += step * 8 + 3) {
	copy[i / 8] ^= (uint8_t) (1u << (i % 8));
	if (rd(copy, len, &err) == 0) {
	    accepted++;
	}
	copy[i / 8] ^= (uint8_t) (1u << (i % 8));
    }
    free(copy);
    return accepted;
}

static int
ReadRequest(const uint8_t *img, size_t len, ProtoError *err)
{
    ProtoRequest m;
    int rc = proto_request_read(img, len, "request", rootPub, &m, NULL, err);

    proto_request_free(&m);
    return rc;
}

static int
ReadReply(const uint8_t *img, size_t len, ProtoError *err)
{
    ProtoReply m;
    int rc = proto_reply_read(img, len, NULL, rootPub, &m, err);

    proto_reply_free(&m);
    return rc;
}

static int
ReadJob(const uint8_t *img, size_t len, ProtoError *err)
{
    ProtoJob m;
    int rc = proto_job_read(img, len, NULL, rootPub, &m, err);

    proto_job_free(&m);
    return rc;
}

static int
ReadStatus(const uint8_t *img, size_t len, ProtoError *err)
{
    ProtoStatus m;
    int rc = proto_status_read(img, len, NULL, mhsmPub, &m, err);

    proto_status_free(&m);
    return rc;
}

static void
TestFiles(void)
{
    ProtoRequest req, rd;
    ProtoReply rep, rp;
    ProtoJob job, jb;
    ProtoStatus st, sd;
    ProtoError err;
    uint8_t *img = NULL, digest[48], d2[48];
    size_t imgLen;

    /* Request: signed by the U-HSM, its certificate inside. */
    SampleRequest(&req);
    CHECK(proto_request_write(&req, SoftSign, uhsmKey, &img, &imgLen, &err)
	    == 0);
    CHECK(proto_request_read(img, imgLen, "job request file './r.req'",
	    rootPub, &rd, digest, &err) == 0);
    CHECK(proto_sha384(img, imgLen, d2) == 0 && memcmp(digest, d2, 48) == 0);
    CHECK(rd.nTickets == 3 && strcmp(rd.jobName, "MyProgJob") == 0);
    proto_request_free(&rd);
    CHECK(proto_request_read(img, imgLen, "./r.req", mhsmPub, &rd, NULL,
	    &err) == -1);
    CHECK(strstr(err.msg, "./r.req: the U-HSM certificate of 1 was not "
	    "issued by the trusted vendor root") != NULL);
    CHECK(proto_reply_read(img, imgLen, "./r.req", rootPub, &rp, &err) == -1);
    CHECK(strcmp(err.msg, "./r.req is a job request, not a job reply") == 0);
    CHECK(Damage(img, imgLen, ReadRequest) == 0);
    free(img);
    /* Signed by another key than the certificate's. */
    CHECK(proto_request_write(&req, SoftSign, mhsmKey, &img, &imgLen, &err)
	    == 0);
    CHECK(proto_request_read(img, imgLen, "./r.req", rootPub, &rd, NULL,
	    &err) == -1);
    CHECK(strcmp(err.msg, "./r.req: the signature of the U-HSM does not "
	    "verify: the file was altered or not signed by that U-HSM") == 0);
    free(img);
    /* A certificate of another U-HSM than the one named. */
    strcpy(req.uhsmUuid, "2");
    CHECK(proto_request_write(&req, SoftSign, uhsmKey, &img, &imgLen, &err)
	    == 0);
    CHECK(proto_request_read(img, imgLen, "./r.req", rootPub, &rd, NULL,
	    &err) == -1);
    CHECK(strcmp(err.msg, "./r.req: it names U-HSM 2, and carries the "
	    "certificate of 1") == 0);
    free(img);
    proto_request_free(&req);

    /* Reply. */
    SampleReply(&rep);
    CHECK(proto_reply_write(&rep, SoftSign, mhsmKey, &img, &imgLen, &err)
	    == 0);
    CHECK(proto_reply_read(img, imgLen, NULL, rootPub, &rp, &err) == 0);
    CHECK(rp.nTickets == 3);
    proto_reply_free(&rp);
    CHECK(proto_reply_read(img, imgLen, NULL, NULL, &rp, &err) == 0);
    proto_reply_free(&rp);
    CHECK(Damage(img, imgLen, ReadReply) == 0);
    free(img);
    CHECK(proto_reply_write(&rep, SoftSign, uhsmKey, &img, &imgLen, &err)
	    == 0);
    CHECK(proto_reply_read(img, imgLen, NULL, rootPub, &rp, &err) == -1);
    CHECK(strstr(err.msg, "signature of the M-HSM does not verify") != NULL);
    free(img);
    proto_reply_free(&rep);

    /* Job. */
    SampleJob(&job);
    CHECK(proto_job_write(&job, SoftSign, uhsmKey, &img, &imgLen, &err) == 0);
    CHECK(proto_job_read(img, imgLen, "job file './MyProgJob.job'", rootPub,
	    &jb, &err) == 0);
    CHECK(jb.nBitstreams == 1 && jb.bitstreams[0].cipherLen == 2000);
    proto_job_free(&jb);
    CHECK(Damage(img, imgLen, ReadJob) == 0);
    free(img);
    proto_job_free(&job);

    /* Status, checked with the M-HSM key of the reply. */
    SampleStatus(&st, 1);
    CHECK(proto_status_write(&st, SoftSign, mhsmKey, &img, &imgLen, &err)
	    == 0);
    CHECK(proto_status_read(img, imgLen, NULL, mhsmPub, &sd, &err) == 0);
    CHECK(sd.nCocs == 3 && sd.nCertifiers == 2);
    proto_status_free(&sd);
    CHECK(proto_status_read(img, imgLen, "status", uhsmPub, &sd, &err) == -1);
    CHECK(strcmp(err.msg, "status: the signature of the M-HSM does not "
	    "verify: the file was altered or not signed by that M-HSM") == 0);
    CHECK(proto_status_read(img, imgLen, "status", NULL, &sd, &err) == -1);
    CHECK(Damage(img, imgLen, ReadStatus) == 0);
    free(img);
    proto_status_free(&st);
}

/* ------------------------------------------------------------------ */
/* CoC MAC and job binding                                              */
/* ------------------------------------------------------------------ */

/* The CoC TBS built by hand from docs/FORMATS.md. */
static size_t
Item(uint8_t *p, uint16_t tag, const void *v, uint32_t len)
{
    p[0] = (uint8_t) (tag >> 8);
    p[1] = (uint8_t) tag;
    p[2] = (uint8_t) (len >> 24);
    p[3] = (uint8_t) (len >> 16);
    p[4] = (uint8_t) (len >> 8);
    p[5] = (uint8_t) len;
    memcpy(p + 6, v, len);
    return 6 + len;
}

static void
TestCocMac(void)
{
    ProtoCoc c;
    uint8_t kip[32], mac[16], key[32], want[16], tbs[512], ctr[8];
    size_t n = 0, macLen = 0, i;
    ProtoError err;
    ProtoBuf b;
    EVP_KDF *kdf;
    EVP_KDF_CTX *kctx;
    OSSL_PARAM params[5];

    SampleCoc(&c, 1);
    Fill(kip, 32, 77);
    CHECK(proto_coc_mac(kip, &c, mac, &err) == 0);

    /* Second way: EVP directly, TBS by hand. */
    n += Item(tbs + n, 0xFFF0, "spps coc v1", 11);
    n += Item(tbs + n, 1, c.dsn, 16);
    n += Item(tbs + n, 2, c.ticketId, 20);
    n += Item(tbs + n, 3, "PROGRAM", 7);
    n += Item(tbs + n, 4, c.designDigest, 48);
    n += Item(tbs + n, 5, c.contentDigest, 48);
    n += Item(tbs + n, 6, c.codeId, 16);
    for (i = 0; i < 8; i++) {
	ctr[i] = (uint8_t) (c.deviceCounter >> (56 - 8 * i));
    }
    n += Item(tbs + n, 7, ctr, 8);
    proto_buf_init(&b);
    CHECK(proto_coc_tbs(&c, &b) == 0);
    CHECK(b.len == n && memcmp(b.data, tbs, n) == 0);
    proto_buf_free(&b);

    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    kctx = EVP_KDF_CTX_new(kdf);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *) "SHA384", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, kip, 32);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, c.dsn,
	    16);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	    (char *) "spps coc v1", 11);
    params[4] = OSSL_PARAM_construct_end();
    CHECK(EVP_KDF_derive(kctx, key, 32, params) == 1);
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    CHECK(EVP_Q_mac(NULL, "CMAC", NULL, "AES-256-CBC", NULL, key, 32, tbs, n,
	    want, 16, &macLen) != NULL && macLen == 16);
    CHECK_MEM(mac, want, 16);

    /* Every field is covered; the MAC field is not. */
    {
	ProtoCoc x = c;
	uint8_t m2[16];

	x.deviceCounter++;
	CHECK(proto_coc_mac(kip, &x, m2, &err) == 0 && memcmp(m2, mac, 16));
	x = c;
	x.codeId[0] ^= 1;
	CHECK(proto_coc_mac(kip, &x, m2, &err) == 0 && memcmp(m2, mac, 16));
	x = c;
	x.mac[0] ^= 1;
	CHECK(proto_coc_mac(kip, &x, m2, &err) == 0 && !memcmp(m2, mac, 16));
	kip[0] ^= 1;
	CHECK(proto_coc_mac(kip, &c, m2, &err) == 0 && memcmp(m2, mac, 16));
    }
    proto_coc_free(&c);
}

static void
TestBinding(void)
{
    ProtoJob m;
    ProtoBuf b, b2;
    ProtoTicketSecret *s = NULL, *d = NULL;
    size_t n, dn;
    uint8_t *sealed = NULL, *pt = NULL, t[20];
    size_t sealedLen, ptLen;
    ProtoError err;
    ProtoItem it;

    SampleJob(&m);
    proto_buf_init(&b);
    CHECK(proto_job_binding(&m, &b) == 0);
    CHECK(proto_find(b.data, b.len, 0xFFF0, &it) == 1 && it.len == 19
	    && memcmp(it.val, "spps job binding v1", 19) == 0);
    CHECK(proto_find(b.data, b.len, 3, &it) == 1 && it.len == 2);
    /* Seal the secrets with the binding as AAD; open them. */
    SampleSecrets(&s, &n);
    proto_buf_init(&b2);
    CHECK(proto_ticket_secrets_encode(s, n, &b2) == 0);
    CHECK(proto_seal_p384(mhsmEncPub, "tickets", b.data, b.len, b2.data,
	    b2.len, &sealed, &sealedLen, &err) == 0);
    CHECK(proto_open_p384(mhsmEncPub, "tickets", SoftEcdh, mhsmEnc, b.data,
	    b.len, sealed, sealedLen, &pt, &ptLen, &err) == 0);
    CHECK(proto_ticket_secrets_decode(pt, ptLen, &d, &dn, &err) == 0
	    && dn == 2);
    proto_ticket_secrets_free(d, dn);
    proto_clear_free(pt, ptLen);
    pt = NULL;
    proto_buf_free(&b2);
    /* Ticket order is part of the binding. */
    memcpy(t, m.tickets[0].id, 20);
    memcpy(m.tickets[0].id, m.tickets[1].id, 20);
    memcpy(m.tickets[1].id, t, 20);
    proto_buf_init(&b2);
    CHECK(proto_job_binding(&m, &b2) == 0);
    CHECK(b2.len == b.len && memcmp(b.data, b2.data, b.len) != 0);
    CHECK(proto_open_p384(mhsmEncPub, "tickets", SoftEcdh, mhsmEnc, b2.data,
	    b2.len, sealed, sealedLen, &pt, &ptLen, &err) == -1);
    proto_buf_free(&b2);
    /* Another M-HSM UUID, another nonce. */
    strcpy(m.mhsmUuid, "11");
    proto_buf_init(&b2);
    CHECK(proto_job_binding(&m, &b2) == 0);
    CHECK(proto_open_p384(mhsmEncPub, "tickets", SoftEcdh, mhsmEnc, b2.data,
	    b2.len, sealed, sealedLen, &pt, &ptLen, &err) == -1);
    proto_buf_free(&b2);
    free(sealed);
    proto_ticket_secrets_free(s, n);
    proto_buf_free(&b);
    proto_job_free(&m);
}

int
main(void)
{
    ProtoError err;
    int rc;

    if (proto_p384_generate(&rootKey, rootPub, &err) != 0
	    || proto_p384_generate(&uhsmKey, uhsmPub, &err) != 0
	    || proto_p384_generate(&mhsmKey, mhsmPub, &err) != 0
	    || proto_p384_generate(&mhsmEnc, mhsmEncPub, &err) != 0) {
	fprintf(stderr, "%s\n", err.msg);
	return 2;
    }
    MakeCert(&uhsmCert, PROTO_CERT_UHSM, "1", uhsmPub, NULL);
    MakeCert(&mhsmCert, PROTO_CERT_MHSM, "10", mhsmPub, mhsmEncPub);
    UNIT_RUN(TestCert);
    UNIT_RUN(TestRequest);
    UNIT_RUN(TestOversized);
    UNIT_RUN(TestReply);
    UNIT_RUN(TestBody);
    UNIT_RUN(TestSecrets);
    UNIT_RUN(TestJob);
    UNIT_RUN(TestStatus);
    UNIT_RUN(TestFiles);
    UNIT_RUN(TestCocMac);
    UNIT_RUN(TestBinding);
    rc = UNIT_DONE("proto_msg");
    EVP_PKEY_free(rootKey);
    EVP_PKEY_free(uhsmKey);
    EVP_PKEY_free(mhsmKey);
    EVP_PKEY_free(mhsmEnc);
    return rc;
}
