/*
 * proto_msg.c --
 *
 *	The messages of the protocol (docs/PROTOCOL.md) as TLV records
 *	(docs/FORMATS.md has the tag registry of each): job request, job
 *	reply, bitstream body, ticket secrets, job, CoC, end certifier, job
 *	status.  Encoders are deterministic: one struct, one encoding (fields
 *	in tag order, repeated items in array order).  Every encoder checks
 *	its output with the decoder, so nothing spps writes is refused when
 *	read back.  Decoders refuse a missing, repeated or malformed field
 *	naming the message, the item and the field.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "proto_int.h"

/* Caps on repeated items (counts come from the items present). */
#define MAX_TICKETS     4096
#define MAX_DEVICES     1024
#define MAX_BITSTREAMS  1024
#define MAX_CLIENTS     256	/* eNVM / sNVM clients */
#define MAX_SETTINGS    1024
#define MAX_KEYS        64
#define MAX_COCS        (1u << 20)
#define MAX_SMALL_FILE  (16u << 20)	/* body of a request or reply */

/* Tags (docs/FORMATS.md). */
enum {				/* job request */
    REQ_JOB = 1, REQ_TASK, REQ_UHSM, REQ_MHSM, REQ_INTERNAL, REQ_NONCE,
    REQ_CREATED, REQ_CERT, REQ_TICKET
};
enum {				/* a ticket of a request */
    RT_NAME = 1, RT_DEVICE, RT_ACTION, RT_MAX
};
enum {				/* job reply */
    REP_DIGEST = 1, REP_JOB, REP_TASK, REP_MHSM, REP_CERT, REP_NONCE,
    REP_CREATED, REP_TICKET
};
enum {				/* a ticket of a reply */
    PT_NAME = 1, PT_ID
};
enum {				/* bitstream body */
    BB_FABRIC = 1, BB_ENVM, BB_SNVM, BB_SECURITY, BB_KEY, BB_PER_DEVICE
};
enum {				/* named bytes */
    NB_NAME = 1, NB_DATA
};
enum {				/* ticket secrets */
    TS_SECRET = 1
};
enum {				/* one ticket secret */
    SEC_ID = 1, SEC_ACTION, SEC_MAX, SEC_KIP, SEC_KEY_MODE, SEC_DIGEST,
    SEC_COC, SEC_BASE_KEY
};
enum {				/* job */
    JOB_JOB = 1, JOB_TASK, JOB_TYPE, JOB_UHSM, JOB_MHSM, JOB_REQ_DIGEST,
    JOB_NONCE, JOB_MHSM_FP, JOB_CERT, JOB_CREATED, JOB_DEVICE, JOB_BITSTREAM,
    JOB_TICKET, JOB_SEALED
};
enum {				/* a device of a job */
    JD_NAME = 1, JD_LOCATION, JD_FAMILY, JD_DIE, JD_BITSTREAM
};
enum {				/* a bitstream of a job */
    BS_NAME = 1, BS_TYPE, BS_FAMILY, BS_DIE, BS_DESIGN, BS_FEATURES,
    BS_PROTOCOL, BS_KEY_MODE, BS_COC, BS_DIGEST, BS_CIPHER
};
enum {				/* a ticket of a job */
    JT_ID = 1, JT_NAME, JT_DEVICE, JT_ACTION, JT_MAX
};
enum {				/* job binding (AAD) */
    BIND_REQ_DIGEST = 1, BIND_NONCE, BIND_MHSM, BIND_TICKET
};
enum {				/* CoC */
    COC_DSN = 1, COC_TICKET, COC_ACTION, COC_DESIGN, COC_CONTENT, COC_CODE,
    COC_COUNTER, COC_MAC
};
enum {				/* end certifier */
    EC_TICKET = 1, EC_NAME, EC_ACTION, EC_REQ_DIGEST, EC_MHSM, EC_MAX,
    EC_COMPLETED, EC_PENDING, EC_END_TYPE, EC_REMOVED, EC_SIGNATURE
};
enum {				/* a ticket of a status */
    ST_ID = 1, ST_NAME, ST_DEVICE, ST_ACTION, ST_MAX, ST_COMPLETED, ST_PENDING
};
enum {				/* job status */
    STA_JOB = 1, STA_TASK, STA_MHSM, STA_REQ_DIGEST, STA_IS_END, STA_END_TYPE,
    STA_CREATED, STA_SEQUENCE, STA_TICKET, STA_COC, STA_CERTIFIER
};

/* Default names of the messages in decoder errors. */
#define WHERE_REQUEST   "job request file"
#define WHERE_REPLY     "job reply file"
#define WHERE_JOB       "job file"
#define WHERE_STATUS    "job status file"
#define WHERE_BODY      "bitstream body"
#define WHERE_SECRETS   "ticket secrets"
#define WHERE_COC       "CoC"
#define WHERE_CERTIFIER "job end certifier"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

/* The first name or id field of an array that may be NULL. */
#define NAMES(arr)   ((arr) != NULL ? &(arr)[0].name : NULL)
#define IDS(arr, f)  ((arr) != NULL ? (arr)[0].f : NULL)

/* A string that may be empty: NULL is written as "". */
static void
PutText(ProtoBuf *b, uint16_t tag, const char *s)
{
    proto_put_str(b, tag, s != NULL ? s : "");
}

/* A string that must not be empty: NULL or "" fails the buffer. */
static void
PutName(ProtoBuf *b, uint16_t tag, const char *s)
{
    if (s == NULL || *s == '\0') {
	b->failed = 1;
	return;
    }
    proto_put_str(b, tag, s);
}

/* FreeNamed -- frees (cleansing when secret) an array of named bytes. */
static void
FreeNamed(ProtoNamedBytes *v, size_t n, int secret)
{
    size_t i;

    if (v == NULL) {
	return;
    }
    for (i = 0; i < n; i++) {
	free(v[i].name);
	if (secret) {
	    proto_clear_free(v[i].data, v[i].len);
	} else {
	    free(v[i].data);
	}
    }
    free(v);
}

/* PutNamed -- repeated (name, bytes) items; fixedLen checks key sizes. */
static void
PutNamed(ProtoBuf *b, uint16_t tag, const ProtoNamedBytes *v, size_t n,
	size_t fixedLen)
{
    size_t i, mark;

    if (n > 0 && v == NULL) {
	b->failed = 1;
	return;
    }
    for (i = 0; i < n; i++) {
	if (fixedLen != 0 && v[i].len != fixedLen) {
	    b->failed = 1;
	    return;
	}
	mark = proto_begin(b, tag);
	PutName(b, NB_NAME, v[i].name);
	proto_put_bytes(b, NB_DATA, v[i].data, v[i].len);
	proto_end(b, mark);
    }
}

/*
 * GetNamed --
 *	Repeated (name, bytes) items: fixedLen 0 for any length up to max.
 */
static int
GetNamed(const ProtoRec *rec, uint16_t tag, const char *one,
	const char *plural, size_t maxItems, size_t fixedLen, size_t max,
	ProtoNamedBytes **out, size_t *nOut)
{
    ProtoNamedBytes *v = NULL;
    ProtoReader r;
    ProtoItem item;
    ProtoRec sub;
    size_t n, i = 0;

    *out = NULL;
    *nOut = 0;
    if (proto_rec_repeat(rec, tag, plural, maxItems, &n) != 0) {
	return -1;
    }
    if (n == 0) {
	return 0;
    }
    if ((v = calloc(n, sizeof(*v))) == NULL) {
	return proto_rec_fail(rec, "no memory for %lu %s", (unsigned long) n,
		plural);
    }
    proto_reader_init(&r, rec->data, rec->len);
    while (i < n && proto_rec_next(&r, tag, &item)) {
	if (proto_rec_sub(&sub, rec, &item, one, i + 1) != 0
		|| proto_rec_str(&sub, NB_NAME, "name", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &v[i].name) < 0
		|| proto_rec_bytes(&sub, NB_DATA, fixedLen ? "key" : "data", 0,
			fixedLen ? fixedLen : max, &v[i].data, &v[i].len) < 0) {
	    FreeNamed(v, i + 1, fixedLen != 0);
	    return -1;
	}
	if (fixedLen != 0 && v[i].len != fixedLen) {
	    proto_rec_fail(&sub, "field 'key' is %lu bytes, must be %lu",
		    (unsigned long) v[i].len, (unsigned long) fixedLen);
	    FreeNamed(v, i + 1, 1);
	    return -1;
	}
	i++;
    }
    if (proto_rec_unique_names(rec, NAMES(v), sizeof(*v), n, plural) != 0) {
	FreeNamed(v, n, fixedLen != 0);
	return -1;
    }
    *out = v;
    *nOut = n;
    return 0;
}

/* 1 if name is one of n strings at stride. */
static int
NameIn(const char *name, char *const *names, size_t stride, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
	if (strcmp(name, *(char *const *) ((const char *) names + i * stride))
		== 0) {
	    return 1;
	}
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Job request                                                          */
/* ------------------------------------------------------------------ */

static void
EncodeRequest(const ProtoRequest *m, ProtoBuf *b)
{
    size_t i, mark;

    PutName(b, REQ_JOB, m->jobName);
    PutName(b, REQ_TASK, m->taskName);
    PutName(b, REQ_UHSM, m->uhsmUuid);
    if (m->mhsmUuid[0] != '\0' || !m->internal) {
	PutName(b, REQ_MHSM, m->mhsmUuid);
    }
    proto_put_u8(b, REQ_INTERNAL, m->internal ? 1 : 0);
    proto_put_bytes(b, REQ_NONCE, m->nonce, PROTO_NONCE);
    proto_put_u64(b, REQ_CREATED, m->created);
    proto_cert_put(b, REQ_CERT, &m->uhsmCert);
    if (m->nTickets > 0 && m->tickets == NULL) {
	b->failed = 1;
	return;
    }
    for (i = 0; i < m->nTickets; i++) {
	const ProtoTicketSpec *t = &m->tickets[i];

	mark = proto_begin(b, REQ_TICKET);
	PutName(b, RT_NAME, t->name);
	PutName(b, RT_DEVICE, t->device);
	PutName(b, RT_ACTION, t->action);
	proto_put_i64(b, RT_MAX, t->maxDevices);
	proto_end(b, mark);
    }
}

/* DecodeRequest -- the fields of a job request (docs/FORMATS.md). */
static int
DecodeRequest(const ProtoRec *rec, ProtoRequest *m)
{
    ProtoReader r;
    ProtoItem item;
    ProtoRec sub;
    size_t n, i = 0;

    if (proto_rec_str(rec, REQ_JOB, "jobName", PROTO_F_NONEMPTY,
		PROTO_MAX_NAME, &m->jobName) < 0
	    || proto_rec_str(rec, REQ_TASK, "taskName", PROTO_F_NONEMPTY,
		PROTO_MAX_NAME, &m->taskName) < 0
	    || proto_rec_uuid(rec, REQ_UHSM, "uhsmUuid", 0, m->uhsmUuid) < 0
	    || proto_rec_bool(rec, REQ_INTERNAL, "internal", &m->internal) < 0
	    || proto_rec_uuid(rec, REQ_MHSM, "mhsmUuid",
		m->internal ? PROTO_F_OPTIONAL : 0, m->mhsmUuid) < 0
	    || proto_rec_fixed(rec, REQ_NONCE, "nonce", m->nonce,
		PROTO_NONCE) < 0
	    || proto_rec_u64(rec, REQ_CREATED, "created", &m->created) < 0
	    || proto_rec_cert(rec, REQ_CERT, "uhsmCert", &m->uhsmCert) < 0
	    || proto_rec_repeat(rec, REQ_TICKET, "tickets", MAX_TICKETS,
		&n) < 0) {
	return -1;
    }
    if (n > 0 && (m->tickets = calloc(n, sizeof(*m->tickets))) == NULL) {
	return proto_rec_fail(rec, "no memory for %lu tickets",
		(unsigned long) n);
    }
    proto_reader_init(&r, rec->data, rec->len);
    while (i < n && proto_rec_next(&r, REQ_TICKET, &item)) {
	ProtoTicketSpec *t = &m->tickets[i];

	m->nTickets = ++i;
	if (proto_rec_sub(&sub, rec, &item, "ticket", i) != 0
		|| proto_rec_str(&sub, RT_NAME, "name", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &t->name) < 0
		|| proto_rec_str(&sub, RT_DEVICE, "device", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &t->device) < 0
		|| proto_rec_enum(&sub, RT_ACTION, "action", proto_actions,
			PROTO_F_NONEMPTY, &t->action) < 0
		|| proto_rec_max_devices(&sub, RT_MAX, "maxDevices",
			&t->maxDevices) < 0) {
	    return -1;
	}
    }
    return proto_rec_unique_names(rec, NAMES(m->tickets),
	    sizeof(*m->tickets), m->nTickets, "tickets");
}

/* proto_request_free -- frees what a decoded request owns. */
void
proto_request_free(ProtoRequest *m)
{
    size_t i;

    if (m == NULL) {
	return;
    }
    free(m->jobName);
    free(m->taskName);
    for (i = 0; m->tickets != NULL && i < m->nTickets; i++) {
	free(m->tickets[i].name);
	free(m->tickets[i].device);
	free(m->tickets[i].action);
    }
    free(m->tickets);
    memset(m, 0, sizeof(*m));
}

/* proto_request_decode -- a job request from its body. */
int
proto_request_decode(const uint8_t *body, size_t len, ProtoRequest *m,
	ProtoError *err)
{
    ProtoRec rec;

    memset(m, 0, sizeof(*m));
    if (proto_rec_open(&rec, body, len, err, WHERE_REQUEST) != 0
	    || DecodeRequest(&rec, m) != 0) {
	proto_request_free(m);
	return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Job reply                                                            */
/* ------------------------------------------------------------------ */

static void
EncodeReply(const ProtoReply *m, ProtoBuf *b)
{
    size_t i, mark;

    proto_put_bytes(b, REP_DIGEST, m->requestDigest, PROTO_DIGEST);
    PutName(b, REP_JOB, m->jobName);
    PutName(b, REP_TASK, m->taskName);
    PutName(b, REP_MHSM, m->mhsmUuid);
    proto_cert_put(b, REP_CERT, &m->mhsmCert);
    proto_put_bytes(b, REP_NONCE, m->bindingNonce, PROTO_NONCE);
    proto_put_u64(b, REP_CREATED, m->created);
    if (m->nTickets > 0 && m->tickets == NULL) {
	b->failed = 1;
	return;
    }
    for (i = 0; i < m->nTickets; i++) {
	mark = proto_begin(b, REP_TICKET);
	PutName(b, PT_NAME, m->tickets[i].name);
	proto_put_bytes(b, PT_ID, m->tickets[i].id, PROTO_TICKET_ID);
	proto_end(b, mark);
    }
}

/* DecodeReply -- the fields of a job reply. */
static int
DecodeReply(const ProtoRec *rec, ProtoReply *m)
{
    ProtoReader r;
    ProtoItem item;
    ProtoRec sub;
    size_t n, i = 0;

    if (proto_rec_fixed(rec, REP_DIGEST, "requestDigest", m->requestDigest,
		PROTO_DIGEST) < 0
	    || proto_rec_str(rec, REP_JOB, "jobName", PROTO_F_NONEMPTY,
		PROTO_MAX_NAME, &m->jobName) < 0
	    || proto_rec_str(rec, REP_TASK, "taskName", PROTO_F_NONEMPTY,
		PROTO_MAX_NAME, &m->taskName) < 0
	    || proto_rec_uuid(rec, REP_MHSM, "mhsmUuid", 0, m->mhsmUuid) < 0
	    || proto_rec_cert(rec, REP_CERT, "mhsmCert", &m->mhsmCert) < 0
	    || proto_rec_fixed(rec, REP_NONCE, "bindingNonce", m->bindingNonce,
		PROTO_NONCE) < 0
	    || proto_rec_u64(rec, REP_CREATED, "created", &m->created) < 0
	    || proto_rec_repeat(rec, REP_TICKET, "tickets", MAX_TICKETS,
		&n) < 0) {
	return -1;
    }
    if (n > 0 && (m->tickets = calloc(n, sizeof(*m->tickets))) == NULL) {
	return proto_rec_fail(rec, "no memory for %lu tickets",
		(unsigned long) n);
    }
    proto_reader_init(&r, rec->data, rec->len);
    while (i < n && proto_rec_next(&r, REP_TICKET, &item)) {
	ProtoReplyTicket *t = &m->tickets[i];

	m->nTickets = ++i;
	if (proto_rec_sub(&sub, rec, &item, "ticket", i) != 0
		|| proto_rec_str(&sub, PT_NAME, "name", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &t->name) < 0
		|| proto_rec_fixed(&sub, PT_ID, "id", t->id,
			PROTO_TICKET_ID) < 0) {
	    return -1;
	}
    }
    if (proto_rec_unique_names(rec, NAMES(m->tickets), sizeof(*m->tickets),
	    m->nTickets, "tickets") != 0
	    || proto_rec_unique_ids(rec, IDS(m->tickets, id),
		sizeof(*m->tickets),
		PROTO_TICKET_ID, m->nTickets, "tickets") != 0) {
	return -1;
    }
    return 0;
}

/* proto_reply_free -- frees what a decoded reply owns. */
void
proto_reply_free(ProtoReply *m)
{
    size_t i;

    if (m == NULL) {
	return;
    }
    free(m->jobName);
    free(m->taskName);
    for (i = 0; m->tickets != NULL && i < m->nTickets; i++) {
	free(m->tickets[i].name);
    }
    free(m->tickets);
    memset(m, 0, sizeof(*m));
}

/* proto_reply_decode -- a job reply from its body. */
int
proto_reply_decode(const uint8_t *body, size_t len, ProtoReply *m,
	ProtoError *err)
{
    ProtoRec rec;

    memset(m, 0, sizeof(*m));
    if (proto_rec_open(&rec, body, len, err, WHERE_REPLY) != 0
	    || DecodeReply(&rec, m) != 0) {
	proto_reply_free(m);
	return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Bitstream body                                                       */
/* ------------------------------------------------------------------ */

static void
EncodeBody(const ProtoBitstreamBody *m, ProtoBuf *b)
{
    size_t i;

    if (m->fabric != NULL) {
	proto_put_bytes(b, BB_FABRIC, m->fabric, m->fabricLen);
    } else if (m->fabricLen != 0) {
	b->failed = 1;
    }
    PutNamed(b, BB_ENVM, m->envm, m->nEnvm, 0);
    PutNamed(b, BB_SNVM, m->snvm, m->nSnvm, 0);
    PutNamed(b, BB_SECURITY, m->security, m->nSecurity, 0);
    PutNamed(b, BB_KEY, m->keys, m->nKeys, PROTO_KEY);
    if (m->nPerDevice > 0 && m->perDevice == NULL) {
	b->failed = 1;
	return;
    }
    for (i = 0; i < m->nPerDevice; i++) {
	PutName(b, BB_PER_DEVICE, m->perDevice[i]);
    }
}

/* DecodeBody -- the fields of a bitstream body. */
static int
DecodeBody(const ProtoRec *rec, ProtoBitstreamBody *m)
{
    ProtoReader r;
    ProtoItem item;
    size_t n, i = 0;

    if (proto_rec_bytes(rec, BB_FABRIC, "fabric", PROTO_F_OPTIONAL,
		PROTO_MAX_BODY, &m->fabric, &m->fabricLen) < 0
	    || GetNamed(rec, BB_ENVM, "eNVM client", "eNVM clients",
		MAX_CLIENTS, 0, PROTO_MAX_BODY, &m->envm, &m->nEnvm) < 0
	    || GetNamed(rec, BB_SNVM, "sNVM client", "sNVM clients",
		MAX_CLIENTS, 0, PROTO_MAX_BODY, &m->snvm, &m->nSnvm) < 0
	    || GetNamed(rec, BB_SECURITY, "security setting",
		"security settings", MAX_SETTINGS, 0, PROTO_MAX_VALUE,
		&m->security, &m->nSecurity) < 0
	    || GetNamed(rec, BB_KEY, "key", "keys", MAX_KEYS, PROTO_KEY,
		PROTO_KEY, &m->keys, &m->nKeys) < 0
	    || proto_rec_repeat(rec, BB_PER_DEVICE, "per-device keys",
		MAX_KEYS, &n) < 0) {
	return -1;
    }
    if (n > 0 && (m->perDevice = calloc(n, sizeof(char *))) == NULL) {
	return proto_rec_fail(rec, "no memory");
    }
    proto_reader_init(&r, rec->data, rec->len);
    while (i < n && proto_rec_next(&r, BB_PER_DEVICE, &item)) {
	m->nPerDevice = ++i;
	if (item.len == 0 || item.len > PROTO_MAX_NAME
		|| memchr(item.val, 0, item.len) != NULL
		|| proto_item_str(&item, &m->perDevice[i - 1]) != 0) {
	    return proto_rec_fail(rec, "per-device key %lu: not a key name",
		    (unsigned long) i);
	}
    }
    return proto_rec_unique_names(rec, m->perDevice, sizeof(char *),
	    m->nPerDevice, "per-device keys");
}

/* proto_bitstream_body_free -- frees (cleansing) a decoded bitstream body. */
void
proto_bitstream_body_free(ProtoBitstreamBody *m)
{
    size_t i;

    if (m == NULL) {
	return;
    }
    proto_clear_free(m->fabric, m->fabricLen);
    FreeNamed(m->envm, m->nEnvm, 1);
    FreeNamed(m->snvm, m->nSnvm, 1);
    FreeNamed(m->security, m->nSecurity, 1);
    FreeNamed(m->keys, m->nKeys, 1);
    for (i = 0; m->perDevice != NULL && i < m->nPerDevice; i++) {
	free(m->perDevice[i]);
    }
    free(m->perDevice);
    memset(m, 0, sizeof(*m));
}

/* proto_bitstream_body_decode -- a bitstream body from its record. */
int
proto_bitstream_body_decode(const uint8_t *body, size_t len,
	ProtoBitstreamBody *m, ProtoError *err)
{
    ProtoRec rec;

    memset(m, 0, sizeof(*m));
    if (proto_rec_open(&rec, body, len, err, WHERE_BODY) != 0
	    || DecodeBody(&rec, m) != 0) {
	proto_bitstream_body_free(m);
	return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Ticket secrets                                                       */
/* ------------------------------------------------------------------ */

static void
EncodeSecrets(const ProtoTicketSecret *s, size_t n, ProtoBuf *b)
{
    size_t i, mark;

    if (n > 0 && s == NULL) {
	b->failed = 1;
	return;
    }
    for (i = 0; i < n; i++) {
	mark = proto_begin(b, TS_SECRET);
	proto_put_bytes(b, SEC_ID, s[i].id, PROTO_TICKET_ID);
	PutName(b, SEC_ACTION, s[i].action);
	proto_put_i64(b, SEC_MAX, s[i].maxDevices);
	proto_put_bytes(b, SEC_KIP, s[i].kip, PROTO_KEY);
	PutName(b, SEC_KEY_MODE, s[i].keyMode);
	proto_put_bytes(b, SEC_DIGEST, s[i].designDigest, PROTO_DIGEST);
	proto_put_u8(b, SEC_COC, s[i].generateCoc ? 1 : 0);
	PutNamed(b, SEC_BASE_KEY, s[i].baseKeys, s[i].nBaseKeys, PROTO_KEY);
	proto_end(b, mark);
    }
}

/* proto_ticket_secrets_free -- frees and cleanses n ticket secrets. */
void
proto_ticket_secrets_free(ProtoTicketSecret *s, size_t n)
{
    size_t i;

    if (s == NULL) {
	return;
    }
    for (i = 0; i < n; i++) {
	free(s[i].action);
	free(s[i].keyMode);
	FreeNamed(s[i].baseKeys, s[i].nBaseKeys, 1);
    }
    proto_clear_free(s, n * sizeof(*s));
}

/* DecodeSecrets -- the ticket secrets record: one item per ticket. */
static int
DecodeSecrets(const ProtoRec *rec, ProtoTicketSecret **out, size_t *nOut)
{
    ProtoTicketSecret *s;
    ProtoReader r;
    ProtoItem item;
    ProtoRec sub;
    size_t n, i = 0;

    if (proto_rec_repeat(rec, TS_SECRET, "ticket secrets", MAX_TICKETS,
	    &n) < 0) {
	return -1;
    }
    if ((s = calloc(n ? n : 1, sizeof(*s))) == NULL) {
	return proto_rec_fail(rec, "no memory");
    }
    proto_reader_init(&r, rec->data, rec->len);
    while (i < n && proto_rec_next(&r, TS_SECRET, &item)) {
	ProtoTicketSecret *t = &s[i++];

	if (proto_rec_sub(&sub, rec, &item, "ticket", i) != 0
		|| proto_rec_fixed(&sub, SEC_ID, "id", t->id,
			PROTO_TICKET_ID) < 0
		|| proto_rec_enum(&sub, SEC_ACTION, "action", proto_actions,
			PROTO_F_NONEMPTY, &t->action) < 0
		|| proto_rec_max_devices(&sub, SEC_MAX, "maxDevices",
			&t->maxDevices) < 0
		|| proto_rec_fixed(&sub, SEC_KIP, "kip", t->kip,
			PROTO_KEY) < 0
		|| proto_rec_enum(&sub, SEC_KEY_MODE, "keyMode",
			proto_key_modes, PROTO_F_NONEMPTY, &t->keyMode) < 0
		|| proto_rec_fixed(&sub, SEC_DIGEST, "designDigest",
			t->designDigest, PROTO_DIGEST) < 0
		|| proto_rec_bool(&sub, SEC_COC, "generateCoc",
			&t->generateCoc) < 0
		|| GetNamed(&sub, SEC_BASE_KEY, "base key", "base keys",
			MAX_KEYS, PROTO_KEY, PROTO_KEY, &t->baseKeys,
			&t->nBaseKeys) < 0) {
	    proto_ticket_secrets_free(s, n ? n : 1);
	    return -1;
	}
    }
    if (proto_rec_unique_ids(rec, s[0].id, sizeof(*s), PROTO_TICKET_ID, n,
	    "tickets") != 0) {
	proto_ticket_secrets_free(s, n ? n : 1);
	return -1;
    }
    *out = s;
    *nOut = n;
    return 0;
}

/* proto_ticket_secrets_decode --
 *	ticket secrets from their (unsealed) record. */
int
proto_ticket_secrets_decode(const uint8_t *body, size_t len,
	ProtoTicketSecret **s, size_t *n, ProtoError *err)
{
    ProtoRec rec;

    *s = NULL;
    *n = 0;
    if (proto_rec_open(&rec, body, len, err, WHERE_SECRETS) != 0) {
	return -1;
    }
    return DecodeSecrets(&rec, s, n);
}

/* ------------------------------------------------------------------ */
/* Job                                                                  */
/* ------------------------------------------------------------------ */

static void
EncodeBitstream(const ProtoBitstream *bs, ProtoBuf *b)
{
    PutName(b, BS_NAME, bs->name);
    PutName(b, BS_TYPE, bs->type);
    PutName(b, BS_FAMILY, bs->family);
    PutName(b, BS_DIE, bs->die);
    PutText(b, BS_DESIGN, bs->designName);
    PutText(b, BS_FEATURES, bs->features);
    PutText(b, BS_PROTOCOL, bs->protocol);
    PutText(b, BS_KEY_MODE, bs->keyMode);
    proto_put_u8(b, BS_COC, bs->generateCoc ? 1 : 0);
    proto_put_bytes(b, BS_DIGEST, bs->designDigest, PROTO_DIGEST);
    proto_put_bytes(b, BS_CIPHER, bs->cipher, bs->cipherLen);
}

/* DecodeBitstream -- the fields of one bitstream of a job. */
static int
DecodeBitstream(const ProtoRec *sub, ProtoBitstream *bs)
{
    if (proto_rec_str(sub, BS_NAME, "name", PROTO_F_NONEMPTY,
		PROTO_MAX_NAME, &bs->name) < 0
	    || proto_rec_str(sub, BS_TYPE, "type", PROTO_F_NONEMPTY,
		PROTO_MAX_NAME, &bs->type) < 0
	    || proto_rec_str(sub, BS_FAMILY, "family", PROTO_F_NONEMPTY,
		PROTO_MAX_NAME, &bs->family) < 0
	    || proto_rec_str(sub, BS_DIE, "die", PROTO_F_NONEMPTY,
		PROTO_MAX_NAME, &bs->die) < 0
	    || proto_rec_str(sub, BS_DESIGN, "designName", 0, PROTO_MAX_NAME,
		&bs->designName) < 0
	    || proto_rec_str(sub, BS_FEATURES, "features", 0, PROTO_MAX_VALUE,
		&bs->features) < 0
	    || proto_rec_str(sub, BS_PROTOCOL, "protocol", 0, PROTO_MAX_NAME,
		&bs->protocol) < 0
	    || proto_rec_enum(sub, BS_KEY_MODE, "keyMode", proto_key_modes, 0,
		&bs->keyMode) < 0
	    || proto_rec_bool(sub, BS_COC, "generateCoc", &bs->generateCoc) < 0
	    || proto_rec_fixed(sub, BS_DIGEST, "designDigest", bs->designDigest,
		PROTO_DIGEST) < 0
	    || proto_rec_bytes(sub, BS_CIPHER, "cipher", PROTO_F_NONEMPTY,
		PROTO_MAX_BODY, &bs->cipher, &bs->cipherLen) < 0) {
	return -1;
    }
    return 0;
}

/* FreeBitstream -- frees what a decoded bitstream owns. */
static void
FreeBitstream(ProtoBitstream *bs)
{
    free(bs->name);
    free(bs->type);
    free(bs->family);
    free(bs->die);
    free(bs->designName);
    free(bs->features);
    free(bs->protocol);
    free(bs->keyMode);
    free(bs->cipher);
}

/* EncodeJob -- the fields of a job, in tag order. */
static void
EncodeJob(const ProtoJob *m, ProtoBuf *b)
{
    size_t i, mark;

    PutName(b, JOB_JOB, m->jobName);
    PutName(b, JOB_TASK, m->taskName);
    PutName(b, JOB_TYPE, m->jobType);
    PutName(b, JOB_UHSM, m->uhsmUuid);
    PutName(b, JOB_MHSM, m->mhsmUuid);
    proto_put_bytes(b, JOB_REQ_DIGEST, m->requestDigest, PROTO_DIGEST);
    proto_put_bytes(b, JOB_NONCE, m->bindingNonce, PROTO_NONCE);
    proto_put_bytes(b, JOB_MHSM_FP, m->mhsmCertFingerprint, PROTO_DIGEST);
    proto_cert_put(b, JOB_CERT, &m->uhsmCert);
    proto_put_u64(b, JOB_CREATED, m->created);
    if ((m->nDevices > 0 && m->devices == NULL)
	    || (m->nBitstreams > 0 && m->bitstreams == NULL)
	    || (m->nTickets > 0 && m->tickets == NULL)) {
	b->failed = 1;
	return;
    }
    for (i = 0; i < m->nDevices; i++) {
	const ProtoJobDevice *d = &m->devices[i];

	mark = proto_begin(b, JOB_DEVICE);
	PutName(b, JD_NAME, d->name);
	proto_put_i64(b, JD_LOCATION, d->hwLocation);
	PutName(b, JD_FAMILY, d->family);
	PutName(b, JD_DIE, d->die);
	PutText(b, JD_BITSTREAM, d->bitstream);
	proto_end(b, mark);
    }
    for (i = 0; i < m->nBitstreams; i++) {
	mark = proto_begin(b, JOB_BITSTREAM);
	EncodeBitstream(&m->bitstreams[i], b);
	proto_end(b, mark);
    }
    for (i = 0; i < m->nTickets; i++) {
	const ProtoJobTicket *t = &m->tickets[i];

	mark = proto_begin(b, JOB_TICKET);
	proto_put_bytes(b, JT_ID, t->id, PROTO_TICKET_ID);
	PutName(b, JT_NAME, t->name);
	PutName(b, JT_DEVICE, t->device);
	PutName(b, JT_ACTION, t->action);
	proto_put_i64(b, JT_MAX, t->maxDevices);
	proto_end(b, mark);
    }
    proto_put_bytes(b, JOB_SEALED, m->sealedSecrets, m->sealedLen);
}

/* DecodeJob -- the fields of a job, and its cross references. */
static int
DecodeJob(const ProtoRec *rec, ProtoJob *m)
{
    ProtoReader r;
    ProtoItem item;
    ProtoRec sub;
    size_t nd, nb, nt, i;
    char quoted[80];

    if (proto_rec_str(rec, JOB_JOB, "jobName", PROTO_F_NONEMPTY,
		PROTO_MAX_NAME, &m->jobName) < 0
	    || proto_rec_str(rec, JOB_TASK, "taskName", PROTO_F_NONEMPTY,
		PROTO_MAX_NAME, &m->taskName) < 0
	    || proto_rec_str(rec, JOB_TYPE, "jobType", PROTO_F_NONEMPTY,
		PROTO_MAX_NAME, &m->jobType) < 0
	    || proto_rec_uuid(rec, JOB_UHSM, "uhsmUuid", 0, m->uhsmUuid) < 0
	    || proto_rec_uuid(rec, JOB_MHSM, "mhsmUuid", 0, m->mhsmUuid) < 0
	    || proto_rec_fixed(rec, JOB_REQ_DIGEST, "requestDigest",
		m->requestDigest, PROTO_DIGEST) < 0
	    || proto_rec_fixed(rec, JOB_NONCE, "bindingNonce", m->bindingNonce,
		PROTO_NONCE) < 0
	    || proto_rec_fixed(rec, JOB_MHSM_FP, "mhsmCertFingerprint",
		m->mhsmCertFingerprint, PROTO_DIGEST) < 0
	    || proto_rec_cert(rec, JOB_CERT, "uhsmCert", &m->uhsmCert) < 0
	    || proto_rec_u64(rec, JOB_CREATED, "created", &m->created) < 0
	    || proto_rec_repeat(rec, JOB_DEVICE, "devices", MAX_DEVICES,
		&nd) < 0
	    || proto_rec_repeat(rec, JOB_BITSTREAM, "bitstreams",
		MAX_BITSTREAMS, &nb) < 0
	    || proto_rec_repeat(rec, JOB_TICKET, "tickets", MAX_TICKETS,
		&nt) < 0
	    || proto_rec_bytes(rec, JOB_SEALED, "sealedSecrets",
		PROTO_F_NONEMPTY, PROTO_MAX_BODY, &m->sealedSecrets,
		&m->sealedLen) < 0) {
	return -1;
    }
    if ((nd > 0 && (m->devices = calloc(nd, sizeof(*m->devices))) == NULL)
	    || (nb > 0 && (m->bitstreams = calloc(nb,
		    sizeof(*m->bitstreams))) == NULL)
	    || (nt > 0 && (m->tickets = calloc(nt,
		    sizeof(*m->tickets))) == NULL)) {
	return proto_rec_fail(rec, "no memory");
    }

    proto_reader_init(&r, rec->data, rec->len);
    for (i = 0; i < nd && proto_rec_next(&r, JOB_DEVICE, &item); ) {
	ProtoJobDevice *d = &m->devices[i];

	m->nDevices = ++i;
	if (proto_rec_sub(&sub, rec, &item, "device", i) != 0
		|| proto_rec_str(&sub, JD_NAME, "name", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &d->name) < 0
		|| proto_rec_count_field(&sub, JD_LOCATION, "hwLocation",
			&d->hwLocation) < 0
		|| proto_rec_str(&sub, JD_FAMILY, "family", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &d->family) < 0
		|| proto_rec_str(&sub, JD_DIE, "die", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &d->die) < 0
		|| proto_rec_str(&sub, JD_BITSTREAM, "bitstream", 0,
			PROTO_MAX_NAME, &d->bitstream) < 0) {
	    return -1;
	}
    }
    proto_reader_init(&r, rec->data, rec->len);
    for (i = 0; i < nb && proto_rec_next(&r, JOB_BITSTREAM, &item); ) {
	m->nBitstreams = ++i;
	if (proto_rec_sub(&sub, rec, &item, "bitstream", i) != 0
		|| DecodeBitstream(&sub, &m->bitstreams[i - 1]) != 0) {
	    return -1;
	}
    }
    proto_reader_init(&r, rec->data, rec->len);
    for (i = 0; i < nt && proto_rec_next(&r, JOB_TICKET, &item); ) {
	ProtoJobTicket *t = &m->tickets[i];

	m->nTickets = ++i;
	if (proto_rec_sub(&sub, rec, &item, "ticket", i) != 0
		|| proto_rec_fixed(&sub, JT_ID, "id", t->id,
			PROTO_TICKET_ID) < 0
		|| proto_rec_str(&sub, JT_NAME, "name", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &t->name) < 0
		|| proto_rec_str(&sub, JT_DEVICE, "device", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &t->device) < 0
		|| proto_rec_enum(&sub, JT_ACTION, "action", proto_actions,
			PROTO_F_NONEMPTY, &t->action) < 0
		|| proto_rec_max_devices(&sub, JT_MAX, "maxDevices",
			&t->maxDevices) < 0) {
	    return -1;
	}
	if (!NameIn(t->device, NAMES(m->devices), sizeof(*m->devices),
		m->nDevices)) {
	    proto_quote(t->device, quoted, sizeof(quoted));
	    return proto_rec_fail(&sub, "device '%s' is not in the job",
		    quoted);
	}
    }
    for (i = 0; i < m->nDevices; i++) {
	const char *bsName = m->devices[i].bitstream;

	if (bsName[0] != '\0' && !NameIn(bsName, NAMES(m->bitstreams),
		sizeof(*m->bitstreams), m->nBitstreams)) {
	    proto_quote(bsName, quoted, sizeof(quoted));
	    return proto_rec_fail(rec, "device %lu: bitstream '%s' is not in "
		    "the job", (unsigned long) i + 1, quoted);
	}
    }
    if (proto_rec_unique_names(rec, NAMES(m->devices), sizeof(*m->devices),
		m->nDevices, "devices") != 0
	    || proto_rec_unique_names(rec, NAMES(m->bitstreams),
		sizeof(*m->bitstreams), m->nBitstreams, "bitstreams") != 0
	    || proto_rec_unique_names(rec, NAMES(m->tickets),
		sizeof(*m->tickets), m->nTickets, "tickets") != 0
	    || proto_rec_unique_ids(rec, IDS(m->tickets, id),
		sizeof(*m->tickets),
		PROTO_TICKET_ID, m->nTickets, "tickets") != 0) {
	return -1;
    }
    return 0;
}

/* proto_job_free -- frees what a decoded job owns. */
void
proto_job_free(ProtoJob *m)
{
    size_t i;

    if (m == NULL) {
	return;
    }
    free(m->jobName);
    free(m->taskName);
    free(m->jobType);
    for (i = 0; m->devices != NULL && i < m->nDevices; i++) {
	free(m->devices[i].name);
	free(m->devices[i].family);
	free(m->devices[i].die);
	free(m->devices[i].bitstream);
    }
    free(m->devices);
    for (i = 0; m->bitstreams != NULL && i < m->nBitstreams; i++) {
	FreeBitstream(&m->bitstreams[i]);
    }
    free(m->bitstreams);
    for (i = 0; m->tickets != NULL && i < m->nTickets; i++) {
	free(m->tickets[i].name);
	free(m->tickets[i].device);
	free(m->tickets[i].action);
    }
    free(m->tickets);
    free(m->sealedSecrets);
    memset(m, 0, sizeof(*m));
}

/* proto_job_decode -- a job from its body. */
int
proto_job_decode(const uint8_t *body, size_t len, ProtoJob *m,
	ProtoError *err)
{
    ProtoRec rec;

    memset(m, 0, sizeof(*m));
    if (proto_rec_open(&rec, body, len, err, WHERE_JOB) != 0
	    || DecodeJob(&rec, m) != 0) {
	proto_job_free(m);
	return -1;
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_job_binding --
 *	The AAD of sealed ticket secrets: context, request digest, binding
 *	nonce, M-HSM UUID, the ticket ids in the job's order.
 *
 *----------------------------------------------------------------------
 */

int
proto_job_binding(const ProtoJob *m, ProtoBuf *out)
{
    size_t i;

    proto_put_str(out, PROTO_TAG_CONTEXT, "spps job binding v1");
    proto_put_bytes(out, BIND_REQ_DIGEST, m->requestDigest, PROTO_DIGEST);
    proto_put_bytes(out, BIND_NONCE, m->bindingNonce, PROTO_NONCE);
    PutName(out, BIND_MHSM, m->mhsmUuid);
    if (m->nTickets > 0 && m->tickets == NULL) {
	out->failed = 1;
    }
    for (i = 0; !out->failed && i < m->nTickets; i++) {
	proto_put_bytes(out, BIND_TICKET, m->tickets[i].id, PROTO_TICKET_ID);
    }
    return out->failed ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* CoC                                                                  */
/* ------------------------------------------------------------------ */

static void
PutCocFields(const ProtoCoc *c, ProtoBuf *b)
{
    proto_put_bytes(b, COC_DSN, c->dsn, PROTO_DSN);
    proto_put_bytes(b, COC_TICKET, c->ticketId, PROTO_TICKET_ID);
    PutName(b, COC_ACTION, c->action);
    proto_put_bytes(b, COC_DESIGN, c->designDigest, PROTO_DIGEST);
    proto_put_bytes(b, COC_CONTENT, c->contentDigest, PROTO_DIGEST);
    proto_put_bytes(b, COC_CODE, c->codeId, PROTO_CODE_ID);
    proto_put_u64(b, COC_COUNTER, c->deviceCounter);
}

/* proto_coc_tbs -- the bytes a CoC's MAC covers: context, fields 1..7. */
int
proto_coc_tbs(const ProtoCoc *coc, ProtoBuf *out)
{
    proto_put_str(out, PROTO_TAG_CONTEXT, "spps coc v1");
    PutCocFields(coc, out);
    return out->failed ? -1 : 0;
}

/* EncodeCoc -- a CoC's fields and MAC. */
static void
EncodeCoc(const ProtoCoc *c, ProtoBuf *b)
{
    PutCocFields(c, b);
    proto_put_bytes(b, COC_MAC, c->mac, PROTO_MAC);
}

/* DecodeCoc -- the fields of a CoC. */
static int
DecodeCoc(const ProtoRec *sub, ProtoCoc *c)
{
    if (proto_rec_fixed(sub, COC_DSN, "dsn", c->dsn, PROTO_DSN) < 0
	    || proto_rec_fixed(sub, COC_TICKET, "ticketId", c->ticketId,
		PROTO_TICKET_ID) < 0
	    || proto_rec_enum(sub, COC_ACTION, "action", proto_actions,
		PROTO_F_NONEMPTY, &c->action) < 0
	    || proto_rec_fixed(sub, COC_DESIGN, "designDigest",
		c->designDigest, PROTO_DIGEST) < 0
	    || proto_rec_fixed(sub, COC_CONTENT, "contentDigest",
		c->contentDigest, PROTO_DIGEST) < 0
	    || proto_rec_fixed(sub, COC_CODE, "codeId", c->codeId,
		PROTO_CODE_ID) < 0
	    || proto_rec_u64(sub, COC_COUNTER, "deviceCounter",
		&c->deviceCounter) < 0
	    || proto_rec_fixed(sub, COC_MAC, "mac", c->mac, PROTO_MAC) < 0) {
	return -1;
    }
    return 0;
}

/* proto_coc_free -- frees what a decoded CoC owns. */
void
proto_coc_free(ProtoCoc *c)
{
    if (c != NULL) {
	free(c->action);
	memset(c, 0, sizeof(*c));
    }
}

/* ------------------------------------------------------------------ */
/* End certifier                                                        */
/* ------------------------------------------------------------------ */

static void
PutCertifierFields(const ProtoCertifier *c, ProtoBuf *b)
{
    proto_put_bytes(b, EC_TICKET, c->ticketId, PROTO_TICKET_ID);
    PutName(b, EC_NAME, c->ticketName);
    PutName(b, EC_ACTION, c->action);
    proto_put_bytes(b, EC_REQ_DIGEST, c->requestDigest, PROTO_DIGEST);
    PutName(b, EC_MHSM, c->mhsmUuid);
    proto_put_i64(b, EC_MAX, c->maxDevices);
    proto_put_i64(b, EC_COMPLETED, c->completed);
    proto_put_i64(b, EC_PENDING, c->pending);
    PutName(b, EC_END_TYPE, c->endType);
    proto_put_u64(b, EC_REMOVED, c->removed);
}

/* proto_certifier_tbs -- the bytes a certifier's signature covers. */
int
proto_certifier_tbs(const ProtoCertifier *c, ProtoBuf *out)
{
    proto_put_str(out, PROTO_TAG_CONTEXT, "spps certifier v1");
    PutCertifierFields(c, out);
    return out->failed ? -1 : 0;
}

/* EncodeCertifier -- a certifier's fields and signature. */
static void
EncodeCertifier(const ProtoCertifier *c, ProtoBuf *b)
{
    PutCertifierFields(c, b);
    proto_put_bytes(b, EC_SIGNATURE, c->signature, PROTO_P384_SIG);
}

/* DecodeCertifier -- the fields of an end certifier. */
static int
DecodeCertifier(const ProtoRec *sub, ProtoCertifier *c)
{
    if (proto_rec_fixed(sub, EC_TICKET, "ticketId", c->ticketId,
		PROTO_TICKET_ID) < 0
	    || proto_rec_str(sub, EC_NAME, "ticketName", PROTO_F_NONEMPTY,
		PROTO_MAX_NAME, &c->ticketName) < 0
	    || proto_rec_enum(sub, EC_ACTION, "action", proto_actions,
		PROTO_F_NONEMPTY, &c->action) < 0
	    || proto_rec_fixed(sub, EC_REQ_DIGEST, "requestDigest",
		c->requestDigest, PROTO_DIGEST) < 0
	    || proto_rec_uuid(sub, EC_MHSM, "mhsmUuid", 0, c->mhsmUuid) < 0
	    || proto_rec_max_devices(sub, EC_MAX, "maxDevices",
		&c->maxDevices) < 0
	    || proto_rec_count_field(sub, EC_COMPLETED, "completed",
		&c->completed) < 0
	    || proto_rec_count_field(sub, EC_PENDING, "pending",
		&c->pending) < 0
	    || proto_rec_enum(sub, EC_END_TYPE, "endType", proto_end_types,
		PROTO_F_NONEMPTY, &c->endType) < 0
	    || proto_rec_u64(sub, EC_REMOVED, "removed", &c->removed) < 0
	    || proto_rec_fixed(sub, EC_SIGNATURE, "signature", c->signature,
		PROTO_P384_SIG) < 0) {
	return -1;
    }
    return 0;
}

/* proto_certifier_free -- frees what a decoded certifier owns. */
void
proto_certifier_free(ProtoCertifier *c)
{
    if (c != NULL) {
	free(c->ticketName);
	free(c->action);
	free(c->endType);
	memset(c, 0, sizeof(*c));
    }
}

/*
 * Stand-alone CoCs and certifiers (a device hands its CoC to the M-HSM,
 * which keeps it; certifiers are kept until the end status is written).
 */
int
proto_coc_encode(const ProtoCoc *c, ProtoBuf *out)
{
    ProtoCoc check;

    EncodeCoc(c, out);
    if (out->failed || proto_coc_decode(out->data, out->len, &check,
	    NULL) != 0) {
	out->failed = 1;
	return -1;
    }
    proto_coc_free(&check);
    return 0;
}

/* proto_coc_decode -- a stand-alone CoC record. */
int
proto_coc_decode(const uint8_t *data, size_t len, ProtoCoc *c,
	ProtoError *err)
{
    ProtoRec rec;

    memset(c, 0, sizeof(*c));
    if (proto_rec_open(&rec, data, len, err, WHERE_COC) != 0
	    || DecodeCoc(&rec, c) != 0) {
	proto_coc_free(c);
	return -1;
    }
    return 0;
}

/* proto_certifier_encode --
 *	a stand-alone certifier record, checked by decoding. */
int
proto_certifier_encode(const ProtoCertifier *c, ProtoBuf *out)
{
    ProtoCertifier check;

    EncodeCertifier(c, out);
    if (out->failed || proto_certifier_decode(out->data, out->len, &check,
	    NULL) != 0) {
	out->failed = 1;
	return -1;
    }
    proto_certifier_free(&check);
    return 0;
}

/* proto_certifier_decode -- a stand-alone certifier record. */
int
proto_certifier_decode(const uint8_t *data, size_t len, ProtoCertifier *c,
	ProtoError *err)
{
    ProtoRec rec;

    memset(c, 0, sizeof(*c));
    if (proto_rec_open(&rec, data, len, err, WHERE_CERTIFIER) != 0
	    || DecodeCertifier(&rec, c) != 0) {
	proto_certifier_free(c);
	return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Job status                                                           */
/* ------------------------------------------------------------------ */

static void
EncodeStatus(const ProtoStatus *m, ProtoBuf *b)
{
    size_t i, mark;

    PutName(b, STA_JOB, m->jobName);
    PutName(b, STA_TASK, m->taskName);
    PutName(b, STA_MHSM, m->mhsmUuid);
    proto_put_bytes(b, STA_REQ_DIGEST, m->requestDigest, PROTO_DIGEST);
    proto_put_u8(b, STA_IS_END, m->isEnd ? 1 : 0);
    if (m->isEnd) {
	PutName(b, STA_END_TYPE, m->endType);
    }
    proto_put_u64(b, STA_CREATED, m->created);
    proto_put_u64(b, STA_SEQUENCE, m->sequence);
    if ((m->nTickets > 0 && m->tickets == NULL)
	    || (m->nCocs > 0 && m->cocs == NULL)
	    || (m->nCertifiers > 0 && m->certifiers == NULL)) {
	b->failed = 1;
	return;
    }
    for (i = 0; i < m->nTickets; i++) {
	const ProtoTicketStatus *t = &m->tickets[i];

	mark = proto_begin(b, STA_TICKET);
	proto_put_bytes(b, ST_ID, t->id, PROTO_TICKET_ID);
	PutName(b, ST_NAME, t->name);
	PutName(b, ST_DEVICE, t->device);
	PutName(b, ST_ACTION, t->action);
	proto_put_i64(b, ST_MAX, t->maxDevices);
	proto_put_i64(b, ST_COMPLETED, t->completed);
	proto_put_i64(b, ST_PENDING, t->pending);
	proto_end(b, mark);
    }
    for (i = 0; i < m->nCocs; i++) {
	mark = proto_begin(b, STA_COC);
	EncodeCoc(&m->cocs[i], b);
	proto_end(b, mark);
    }
    for (i = 0; i < m->nCertifiers; i++) {
	mark = proto_begin(b, STA_CERTIFIER);
	EncodeCertifier(&m->certifiers[i], b);
	proto_end(b, mark);
    }
}

/* DecodeStatus -- the fields of a job status. */
static int
DecodeStatus(const ProtoRec *rec, ProtoStatus *m)
{
    ProtoReader r;
    ProtoItem item;
    ProtoRec sub;
    size_t nt, nc, ne, i;

    if (proto_rec_str(rec, STA_JOB, "jobName", PROTO_F_NONEMPTY,
		PROTO_MAX_NAME, &m->jobName) < 0
	    || proto_rec_str(rec, STA_TASK, "taskName", PROTO_F_NONEMPTY,
		PROTO_MAX_NAME, &m->taskName) < 0
	    || proto_rec_uuid(rec, STA_MHSM, "mhsmUuid", 0, m->mhsmUuid) < 0
	    || proto_rec_fixed(rec, STA_REQ_DIGEST, "requestDigest",
		m->requestDigest, PROTO_DIGEST) < 0
	    || proto_rec_bool(rec, STA_IS_END, "isEnd", &m->isEnd) < 0
	    || proto_rec_enum(rec, STA_END_TYPE, "endType", proto_end_types,
		m->isEnd ? PROTO_F_NONEMPTY : PROTO_F_OPTIONAL,
		&m->endType) < 0
	    || proto_rec_u64(rec, STA_CREATED, "created", &m->created) < 0
	    || proto_rec_u64(rec, STA_SEQUENCE, "sequence", &m->sequence) < 0
	    || proto_rec_repeat(rec, STA_TICKET, "tickets", MAX_TICKETS,
		&nt) < 0
	    || proto_rec_repeat(rec, STA_COC, "CoCs", MAX_COCS, &nc) < 0
	    || proto_rec_repeat(rec, STA_CERTIFIER, "certifiers", MAX_TICKETS,
		&ne) < 0) {
	return -1;
    }
    if (!m->isEnd && m->endType != NULL) {
	return proto_rec_fail(rec, "field 'endType' is present in a status "
		"that is not an end status");
    }
    if ((nt > 0 && (m->tickets = calloc(nt, sizeof(*m->tickets))) == NULL)
	    || (nc > 0 && (m->cocs = calloc(nc, sizeof(*m->cocs))) == NULL)
	    || (ne > 0 && (m->certifiers = calloc(ne,
		    sizeof(*m->certifiers))) == NULL)) {
	return proto_rec_fail(rec, "no memory");
    }
    proto_reader_init(&r, rec->data, rec->len);
    for (i = 0; i < nt && proto_rec_next(&r, STA_TICKET, &item); ) {
	ProtoTicketStatus *t = &m->tickets[i];

	m->nTickets = ++i;
	if (proto_rec_sub(&sub, rec, &item, "ticket", i) != 0
		|| proto_rec_fixed(&sub, ST_ID, "id", t->id,
			PROTO_TICKET_ID) < 0
		|| proto_rec_str(&sub, ST_NAME, "name", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &t->name) < 0
		|| proto_rec_str(&sub, ST_DEVICE, "device", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &t->device) < 0
		|| proto_rec_enum(&sub, ST_ACTION, "action", proto_actions,
			PROTO_F_NONEMPTY, &t->action) < 0
		|| proto_rec_max_devices(&sub, ST_MAX, "maxDevices",
			&t->maxDevices) < 0
		|| proto_rec_count_field(&sub, ST_COMPLETED, "completed",
			&t->completed) < 0
		|| proto_rec_count_field(&sub, ST_PENDING, "pending",
			&t->pending) < 0) {
	    return -1;
	}
    }
    proto_reader_init(&r, rec->data, rec->len);
    for (i = 0; i < nc && proto_rec_next(&r, STA_COC, &item); ) {
	m->nCocs = ++i;
	if (proto_rec_sub(&sub, rec, &item, "CoC", i) != 0
		|| DecodeCoc(&sub, &m->cocs[i - 1]) != 0) {
	    return -1;
	}
    }
    proto_reader_init(&r, rec->data, rec->len);
    for (i = 0; i < ne && proto_rec_next(&r, STA_CERTIFIER, &item); ) {
	m->nCertifiers = ++i;
	if (proto_rec_sub(&sub, rec, &item, "certifier", i) != 0
		|| DecodeCertifier(&sub, &m->certifiers[i - 1]) != 0) {
	    return -1;
	}
    }
    if (proto_rec_unique_ids(rec, IDS(m->tickets, id),
		sizeof(*m->tickets), PROTO_TICKET_ID, m->nTickets,
		"tickets") != 0
	    || proto_rec_unique_ids(rec,
		IDS(m->certifiers, ticketId),
		sizeof(*m->certifiers), PROTO_TICKET_ID, m->nCertifiers,
		"certifiers") != 0) {
	return -1;
    }
    return 0;
}

/* proto_status_free -- frees what a decoded status owns. */
void
proto_status_free(ProtoStatus *m)
{
    size_t i;

    if (m == NULL) {
	return;
    }
    free(m->jobName);
    free(m->taskName);
    free(m->endType);
    for (i = 0; m->tickets != NULL && i < m->nTickets; i++) {
	free(m->tickets[i].name);
	free(m->tickets[i].device);
	free(m->tickets[i].action);
    }
    free(m->tickets);
    for (i = 0; m->cocs != NULL && i < m->nCocs; i++) {
	proto_coc_free(&m->cocs[i]);
    }
    free(m->cocs);
    for (i = 0; m->certifiers != NULL && i < m->nCertifiers; i++) {
	proto_certifier_free(&m->certifiers[i]);
    }
    free(m->certifiers);
    memset(m, 0, sizeof(*m));
}

/* proto_status_decode -- a job status from its body. */
int
proto_status_decode(const uint8_t *body, size_t len, ProtoStatus *m,
	ProtoError *err)
{
    ProtoRec rec;

    memset(m, 0, sizeof(*m));
    if (proto_rec_open(&rec, body, len, err, WHERE_STATUS) != 0
	    || DecodeStatus(&rec, m) != 0) {
	proto_status_free(m);
	return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Encoders: encode, then read back with the decoder                    */
/* ------------------------------------------------------------------ */

/*
 * Each public encoder appends the encoding to out and checks it with the
 * decoder (what decoders refuse, encoders refuse too).  On failure out
 * is marked failed and -1 returned; err (internal) says why.
 */

static int
RequestEncode(const ProtoRequest *m, ProtoBuf *out, ProtoError *err)
{
    size_t start = out->len;
    ProtoRequest check;

    EncodeRequest(m, out);
    if (out->failed) {
	return proto_err(err, "job request: a required field is unset, or "
		"no memory");
    }
    if (proto_request_decode(out->data + start, out->len - start, &check,
	    err) != 0) {
	out->failed = 1;
	return -1;
    }
    proto_request_free(&check);
    return 0;
}

/* ReplyEncode -- encodes a reply and checks it with the decoder. */
static int
ReplyEncode(const ProtoReply *m, ProtoBuf *out, ProtoError *err)
{
    size_t start = out->len;
    ProtoReply check;

    EncodeReply(m, out);
    if (out->failed) {
	return proto_err(err, "job reply: a required field is unset, or no "
		"memory");
    }
    if (proto_reply_decode(out->data + start, out->len - start, &check,
	    err) != 0) {
	out->failed = 1;
	return -1;
    }
    proto_reply_free(&check);
    return 0;
}

/* JobEncode -- encodes a job and checks it with the decoder. */
static int
JobEncode(const ProtoJob *m, ProtoBuf *out, ProtoError *err)
{
    size_t start = out->len;
    ProtoJob check;

    EncodeJob(m, out);
    if (out->failed) {
	return proto_err(err, "job: a required field is unset, or no memory");
    }
    if (proto_job_decode(out->data + start, out->len - start, &check,
	    err) != 0) {
	out->failed = 1;
	return -1;
    }
    proto_job_free(&check);
    return 0;
}

/* StatusEncode -- encodes a status and checks it with the decoder. */
static int
StatusEncode(const ProtoStatus *m, ProtoBuf *out, ProtoError *err)
{
    size_t start = out->len;
    ProtoStatus check;

    EncodeStatus(m, out);
    if (out->failed) {
	return proto_err(err, "job status: a required field is unset, or no "
		"memory");
    }
    if (proto_status_decode(out->data + start, out->len - start, &check,
	    err) != 0) {
	out->failed = 1;
	return -1;
    }
    proto_status_free(&check);
    return 0;
}

/* proto_request_encode -- the request record, checked by decoding. */
int
proto_request_encode(const ProtoRequest *m, ProtoBuf *out)
{
    return RequestEncode(m, out, NULL);
}

/* proto_reply_encode -- the reply record, checked by decoding. */
int
proto_reply_encode(const ProtoReply *m, ProtoBuf *out)
{
    return ReplyEncode(m, out, NULL);
}

/* proto_job_encode -- the job record, checked by decoding. */
int
proto_job_encode(const ProtoJob *m, ProtoBuf *out)
{
    return JobEncode(m, out, NULL);
}

/* proto_status_encode -- the status record, checked by decoding. */
int
proto_status_encode(const ProtoStatus *m, ProtoBuf *out)
{
    return StatusEncode(m, out, NULL);
}

/* proto_bitstream_body_encode --
 *	the bitstream body record, checked by decoding. */
int
proto_bitstream_body_encode(const ProtoBitstreamBody *m, ProtoBuf *out)
{
    size_t start = out->len;
    ProtoBitstreamBody check;

    EncodeBody(m, out);
    if (out->failed || proto_bitstream_body_decode(out->data + start,
	    out->len - start, &check, NULL) != 0) {
	out->failed = 1;
	return -1;
    }
    proto_bitstream_body_free(&check);
    return 0;
}

/* proto_ticket_secrets_encode --
 *	the ticket secrets record, checked by decoding. */
int
proto_ticket_secrets_encode(const ProtoTicketSecret *s, size_t n,
	ProtoBuf *out)
{
    size_t start = out->len, nCheck;
    ProtoTicketSecret *check;

    EncodeSecrets(s, n, out);
    if (out->failed || proto_ticket_secrets_decode(out->data + start,
	    out->len - start, &check, &nCheck, NULL) != 0) {
	out->failed = 1;
	return -1;
    }
    proto_ticket_secrets_free(check, nCheck ? nCheck : 1);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Files: encoding + envelope + signature                               */
/* ------------------------------------------------------------------ */

/*
 * WriteSigned --
 *	The envelope around an encoded body, signed by signFn.
 */
static int
WriteSigned(ProtoFileType type, ProtoBuf *body, ProtoSignFn signFn,
	void *signCtx, uint8_t **out, size_t *outLen, ProtoError *err)
{
    int rc = proto_container_write(type, PROTO_AUTH_SIGNATURE, 0, body->data,
	    body->len, NULL, signFn, signCtx, out, outLen, err);

    proto_buf_free(body);
    return rc;
}

/*
 * ReadSigned --
 *	Opens the envelope of a signed file; the caller decodes the body and
 *	checks c->signature over c->signedPart.
 */
static int
ReadSigned(const uint8_t *image, size_t len, ProtoFileType type,
	const char *what, ProtoContainer *c, ProtoError *err)
{
    /* Requests and replies are small (4096 tickets of short names). */
    size_t max = type == PROTO_FILE_REQUEST || type == PROTO_FILE_REPLY
	    ? MAX_SMALL_FILE : PROTO_MAX_BODY;

    if (proto_container_read(image, len, type, NULL, max, what, c,
	    err) != 0) {
	return -1;
    }
    if (c->auth != PROTO_AUTH_SIGNATURE) {
	proto_container_free(c);
	return proto_err(err, "%s is not signed", what);
    }
    return 0;
}

/* CheckSignature -- the signer's ECDSA signature over the envelope. */
static int
CheckSignature(const ProtoContainer *c, const uint8_t key[PROTO_P384_PUB],
	const char *what, const char *signer, ProtoError *err)
{
    ProtoError verr;

    if (proto_verify_p384(key, c->signedPart, c->signedLen, c->signature,
	    &verr) != 0) {
	return proto_err(err, "%s: the signature of the %s does not verify: "
		"the file was altered or not signed by that %s", what, signer,
		signer);
    }
    return 0;
}

/*
 * CheckSigner --
 *	The checks of a file signed by an HSM that carries its own
 *	certificate: the certificate is of the HSM the file names, is signed
 *	by the vendor root (when root is given), and its key signed the file.
 */
static int
CheckSigner(const ProtoContainer *c, const ProtoCert *cert, const char *uuid,
	ProtoCertKind kind, const uint8_t *root, const char *what,
	ProtoError *err)
{
    const char *signer = proto_cert_kind_name(kind);
    ProtoError cerr;

    if (strcmp(cert->subject, uuid) != 0) {
	return proto_err(err, "%s: it names %s %s, and carries the "
		"certificate of %s", what, signer, uuid, cert->subject);
    }
    if (root != NULL && proto_cert_verify(cert, kind, root, &cerr) != 0) {
	return proto_err(err, "%s: %s", what, cerr.msg);
    }
    return CheckSignature(c, cert->signKey, what, signer, err);
}

/* The file's name in messages: what, or the message's default. */
#define WHAT(what, dflt) ((what) != NULL ? (what) : (dflt))

/* proto_request_write -- a signed job request file. */
int
proto_request_write(const ProtoRequest *m, ProtoSignFn signFn, void *signCtx,
	uint8_t **out, size_t *outLen, ProtoError *err)
{
    ProtoBuf b;

    proto_buf_init(&b);
    if (RequestEncode(m, &b, err) != 0) {
	proto_buf_free(&b);
	return -1;
    }
    return WriteSigned(PROTO_FILE_REQUEST, &b, signFn, signCtx, out, outLen,
	    err);
}

/* proto_request_read -- checks and decodes a job request file (proto.h). */
int
proto_request_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t root[PROTO_P384_PUB], ProtoRequest *m,
	uint8_t digest[PROTO_DIGEST], ProtoError *err)
{
    ProtoContainer c;
    ProtoRec rec;

    memset(m, 0, sizeof(*m));
    what = WHAT(what, WHERE_REQUEST);
    if (ReadSigned(image, len, PROTO_FILE_REQUEST, what, &c, err) != 0) {
	return -1;
    }
    if (proto_rec_open(&rec, c.body, c.bodyLen, err, "%s", what) != 0
	    || DecodeRequest(&rec, m) != 0) {
	goto fail;
    }
    if (CheckSigner(&c, &m->uhsmCert, m->uhsmUuid, PROTO_CERT_UHSM, root, what, err) != 0) {
	goto fail;
    }
    if (digest != NULL && proto_sha384(image, len, digest) != 0) {
	proto_err(err, "%s: SHA-384 failed", what);
	goto fail;
    }
    proto_container_free(&c);
    return 0;

  fail:
    proto_container_free(&c);
    proto_request_free(m);
    return -1;
}

/* proto_reply_write -- a signed job reply file. */
int
proto_reply_write(const ProtoReply *m, ProtoSignFn signFn, void *signCtx,
	uint8_t **out, size_t *outLen, ProtoError *err)
{
    ProtoBuf b;

    proto_buf_init(&b);
    if (ReplyEncode(m, &b, err) != 0) {
	proto_buf_free(&b);
	return -1;
    }
    return WriteSigned(PROTO_FILE_REPLY, &b, signFn, signCtx, out, outLen,
	    err);
}

/* proto_reply_read -- checks and decodes a job reply file (proto.h). */
int
proto_reply_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t root[PROTO_P384_PUB], ProtoReply *m, ProtoError *err)
{
    ProtoContainer c;
    ProtoRec rec;

    memset(m, 0, sizeof(*m));
    what = WHAT(what, WHERE_REPLY);
    if (ReadSigned(image, len, PROTO_FILE_REPLY, what, &c, err) != 0) {
	return -1;
    }
    if (proto_rec_open(&rec, c.body, c.bodyLen, err, "%s", what) != 0
	    || DecodeReply(&rec, m) != 0) {
	goto fail;
    }
    if (CheckSigner(&c, &m->mhsmCert, m->mhsmUuid, PROTO_CERT_MHSM, root, what, err) != 0) {
	goto fail;
    }
    proto_container_free(&c);
    return 0;

  fail:
    proto_container_free(&c);
    proto_reply_free(m);
    return -1;
}

/* proto_job_write -- a signed job file. */
int
proto_job_write(const ProtoJob *m, ProtoSignFn signFn, void *signCtx,
	uint8_t **out, size_t *outLen, ProtoError *err)
{
    ProtoBuf b;

    proto_buf_init(&b);
    if (JobEncode(m, &b, err) != 0) {
	proto_buf_free(&b);
	return -1;
    }
    return WriteSigned(PROTO_FILE_JOB, &b, signFn, signCtx, out, outLen, err);
}

/* proto_job_read -- checks and decodes a job file (proto.h). */
int
proto_job_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t root[PROTO_P384_PUB], ProtoJob *m, ProtoError *err)
{
    ProtoContainer c;
    ProtoRec rec;

    memset(m, 0, sizeof(*m));
    what = WHAT(what, WHERE_JOB);
    if (ReadSigned(image, len, PROTO_FILE_JOB, what, &c, err) != 0) {
	return -1;
    }
    if (proto_rec_open(&rec, c.body, c.bodyLen, err, "%s", what) != 0
	    || DecodeJob(&rec, m) != 0) {
	goto fail;
    }
    if (CheckSigner(&c, &m->uhsmCert, m->uhsmUuid, PROTO_CERT_UHSM, root, what, err) != 0) {
	goto fail;
    }
    proto_container_free(&c);
    return 0;

  fail:
    proto_container_free(&c);
    proto_job_free(m);
    return -1;
}

/* proto_status_write -- a signed job status file. */
int
proto_status_write(const ProtoStatus *m, ProtoSignFn signFn, void *signCtx,
	uint8_t **out, size_t *outLen, ProtoError *err)
{
    ProtoBuf b;

    proto_buf_init(&b);
    if (StatusEncode(m, &b, err) != 0) {
	proto_buf_free(&b);
	return -1;
    }
    return WriteSigned(PROTO_FILE_STATUS, &b, signFn, signCtx, out, outLen,
	    err);
}

/* proto_status_read -- checks and decodes a job status file (proto.h). */
int
proto_status_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t mhsmKey[PROTO_P384_PUB], ProtoStatus *m, ProtoError *err)
{
    ProtoContainer c;
    ProtoRec rec;

    memset(m, 0, sizeof(*m));
    what = WHAT(what, WHERE_STATUS);
    if (mhsmKey == NULL) {
	return proto_err(err, "%s: no M-HSM key to check it with", what);
    }
    if (ReadSigned(image, len, PROTO_FILE_STATUS, what, &c, err) != 0) {
	return -1;
    }
    /* The key is known beforehand: check the signature before decoding. */
    if (CheckSignature(&c, mhsmKey, what, "M-HSM", err) != 0
	    || proto_rec_open(&rec, c.body, c.bodyLen, err, "%s", what) != 0
	    || DecodeStatus(&rec, m) != 0) {
	proto_container_free(&c);
	proto_status_free(m);
	return -1;
    }
    proto_container_free(&c);
    return 0;
}
