/*
 * proto_decode.c --
 *
 *	The record decoder behind every message decoder (proto_int.h): finds
 *	fields by tag, refuses missing, repeated and malformed fields, and
 *	says where ("job file: ticket 2: field 'action' is missing").  Also
 *	the error helpers of the protocol core.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "proto.h"
#include "proto_int.h"

const char *const proto_actions[] = {"PROGRAM", "VERIFY", "ERASE", NULL};
const char *const proto_key_modes[] = {"DFK", "KFP", "KFPE", NULL};
const char *const proto_end_types[] = {"COMPLETED", "TERMINATED", NULL};

/*
 *----------------------------------------------------------------------
 *
 * proto_err, proto_err_ossl --
 *	Fill the caller's error (which may be NULL) and return -1.
 *
 *----------------------------------------------------------------------
 */

int
proto_err(ProtoError *err, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
    }
    return -1;
}

/* proto_err_ossl -- "what: <OpenSSL reason>", the error queue drained. */
int
proto_err_ossl(ProtoError *err, const char *what)
{
    unsigned long code = ERR_peek_last_error();
    char reason[160];

    if (code != 0) {
	ERR_error_string_n(code, reason, sizeof(reason));
    } else {
	snprintf(reason, sizeof(reason), "OpenSSL failed");
    }
    ERR_clear_error();
    return proto_err(err, "%s: %s", what, reason);
}

/*
 *----------------------------------------------------------------------
 *
 * proto_quote --
 *	A printable excerpt of untrusted text: control and non-ASCII bytes
 *	become '?', and text longer than the buffer is cut with "...".
 *
 *----------------------------------------------------------------------
 */

void
proto_quote(const char *text, char *out, size_t outLen)
{
    size_t i, n = 0;

    if (outLen < 8) {
	if (outLen > 0) {
	    out[0] = '\0';
	}
	return;
    }
    for (i = 0; text != NULL && text[i] != '\0'; i++) {
	unsigned char c = (unsigned char) text[i];

	if (n + 4 >= outLen) {
	    memcpy(out + n, "...", 3);
	    n += 3;
	    break;
	}
	out[n++] = (c >= 0x20 && c < 0x7F) ? (char) c : '?';
    }
    out[n] = '\0';
}

/*
 *----------------------------------------------------------------------
 *
 * proto_rec_open, proto_rec_sub --
 *	Start decoding a record: every item must lie within it.
 *
 *----------------------------------------------------------------------
 */

static int
CheckWhole(ProtoRec *rec)
{
    ProtoReader r;
    ProtoItem item;
    size_t n = 0;
    int rc;

    proto_reader_init(&r, rec->data, rec->len);
    while ((rc = proto_next(&r, &item)) == 1) {
	n++;
    }
    if (rc < 0) {
	return proto_rec_fail(rec, "malformed record: item %lu runs past the "
		"end (%lu bytes left)", (unsigned long) n + 1,
		(unsigned long) (r.end - r.p));
    }
    return 0;
}

/* proto_rec_open --
 *	starts decoding a record named by fmt; checks it is whole items. */
int
proto_rec_open(ProtoRec *rec, const uint8_t *data, size_t len,
	ProtoError *err, const char *fmt, ...)
{
    va_list ap;

    rec->data = data;
    rec->len = data != NULL ? len : 0;
    rec->err = err;
    va_start(ap, fmt);
    vsnprintf(rec->where, sizeof(rec->where), fmt, ap);
    va_end(ap);
    return CheckWhole(rec);
}

/* proto_rec_sub --
 *	the nested record of item, named "<parent>: <name> <index>". */
int
proto_rec_sub(ProtoRec *sub, const ProtoRec *parent, const ProtoItem *item,
	const char *name, size_t index)
{
    sub->data = item->val;
    sub->len = item->len;
    sub->err = parent->err;
    if (index > 0) {
	snprintf(sub->where, sizeof(sub->where), "%.150s: %.24s %lu",
		parent->where, name, (unsigned long) index);
    } else {
	snprintf(sub->where, sizeof(sub->where), "%.150s: %.40s",
		parent->where, name);
    }
    return CheckWhole(sub);
}

/* proto_rec_fail --
 *	"<where>: <sentence>" into the record's error; returns -1. */
int
proto_rec_fail(const ProtoRec *rec, const char *fmt, ...)
{
    char text[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return proto_err(rec->err, "%s: %s", rec->where, text);
}

/*
 *----------------------------------------------------------------------
 *
 * proto_rec_item --
 *	The single item of a field.
 *
 *----------------------------------------------------------------------
 */

int
proto_rec_item(const ProtoRec *rec, uint16_t tag, const char *field,
	int flags, ProtoItem *item)
{
    ProtoReader r;
    ProtoItem it;
    int found = 0;

    proto_reader_init(&r, rec->data, rec->len);
    while (proto_next(&r, &it) == 1) {
	if (it.tag != tag) {
	    continue;
	}
	if (found) {
	    return proto_rec_fail(rec, "field '%s' is present twice", field);
	}
	*item = it;
	found = 1;
    }
    if (!found && !(flags & PROTO_F_OPTIONAL)) {
	return proto_rec_fail(rec, "field '%s' is missing", field);
    }
    return found;
}

/* WrongSize -- the refusal of a field of the wrong size. */
static int
WrongSize(const ProtoRec *rec, const char *field, const ProtoItem *item,
	size_t want)
{
    return proto_rec_fail(rec, "field '%s' is %lu bytes, must be %lu", field,
	    (unsigned long) item->len, (unsigned long) want);
}

/*
 *----------------------------------------------------------------------
 *
 * proto_rec_str, proto_rec_enum --
 *	Text fields: UTF-8, no NUL, bounded; enums from a closed list.
 *
 *----------------------------------------------------------------------
 */

int
proto_rec_str(const ProtoRec *rec, uint16_t tag, const char *field,
	int flags, size_t max, char **out)
{
    ProtoItem item;
    int rc;

    *out = NULL;
    if ((rc = proto_rec_item(rec, tag, field, flags, &item)) <= 0) {
	return rc;
    }
    if (item.len > max) {
	return proto_rec_fail(rec, "field '%s' is %lu bytes long, at most %lu "
		"are allowed", field, (unsigned long) item.len,
		(unsigned long) max);
    }
    if (memchr(item.val, 0, item.len) != NULL) {
	return proto_rec_fail(rec, "field '%s' contains a NUL byte", field);
    }
    if (!proto_utf8_valid(item.val, item.len)) {
	return proto_rec_fail(rec, "field '%s' is not valid UTF-8", field);
    }
    if ((flags & PROTO_F_NONEMPTY) && item.len == 0) {
	return proto_rec_fail(rec, "field '%s' is empty", field);
    }
    if (proto_item_str(&item, out) != 0) {
	return proto_rec_fail(rec, "no memory for field '%s'", field);
    }
    return 1;
}

/* proto_rec_enum -- a text field that must be one of choices. */
int
proto_rec_enum(const ProtoRec *rec, uint16_t tag, const char *field,
	const char *const *choices, int flags, char **out)
{
    char list[160], quoted[80];
    size_t i, n = 0;
    int rc;

    rc = proto_rec_str(rec, tag, field, flags, PROTO_MAX_NAME, out);
    if (rc <= 0) {
	return rc;
    }
    if (**out == '\0' && !(flags & PROTO_F_NONEMPTY)) {
	return 1;
    }
    for (i = 0; choices[i] != NULL; i++) {
	if (strcmp(*out, choices[i]) == 0) {
	    return 1;
	}
    }
    list[0] = '\0';
    for (i = 0; choices[i] != NULL; i++) {
	n += (size_t) snprintf(list + n, sizeof(list) - n, "%s%s",
		i == 0 ? "" : choices[i + 1] == NULL ? " or " : ", ",
		choices[i]);
	if (n >= sizeof(list)) {
	    break;
	}
    }
    proto_quote(*out, quoted, sizeof(quoted));
    free(*out);
    *out = NULL;
    return proto_rec_fail(rec, "field '%s' is '%s', not %s", field, quoted,
	    list);
}

/*
 *----------------------------------------------------------------------
 *
 * Integer and flag fields.
 *
 *----------------------------------------------------------------------
 */

int
proto_rec_u64(const ProtoRec *rec, uint16_t tag, const char *field,
	uint64_t *v)
{
    ProtoItem item;
    int rc;

    if ((rc = proto_rec_item(rec, tag, field, 0, &item)) <= 0) {
	return -1;
    }
    if (proto_item_u64(&item, v) != 0) {
	return WrongSize(rec, field, &item, 8);
    }
    return 1;
}

/* GetI64 -- a required 8-byte signed field. */
static int
GetI64(const ProtoRec *rec, uint16_t tag, const char *field, int64_t *v)
{
    ProtoItem item;

    if (proto_rec_item(rec, tag, field, 0, &item) <= 0) {
	return -1;
    }
    if (proto_item_i64(&item, v) != 0) {
	return WrongSize(rec, field, &item, 8);
    }
    return 1;
}

/* proto_rec_count_field -- a required count: 0 .. INT64_MAX. */
int
proto_rec_count_field(const ProtoRec *rec, uint16_t tag, const char *field,
	int64_t *v)
{
    if (GetI64(rec, tag, field, v) < 0) {
	return -1;
    }
    if (*v < 0) {
	return proto_rec_fail(rec, "field '%s' is negative (%lld)", field,
		(long long) *v);
    }
    return 1;
}

/* proto_rec_max_devices -- a required maxDevices: >= 1 or PROTO_UNLIMITED. */
int
proto_rec_max_devices(const ProtoRec *rec, uint16_t tag, const char *field,
	int64_t *v)
{
    if (GetI64(rec, tag, field, v) < 0) {
	return -1;
    }
    if (*v < 1 && *v != PROTO_UNLIMITED) {
	return proto_rec_fail(rec, "field '%s' is %lld: must be at least 1, "
		"or %d for unlimited", field, (long long) *v, PROTO_UNLIMITED);
    }
    return 1;
}

/* proto_rec_bool -- a required flag: one byte, 0 or 1. */
int
proto_rec_bool(const ProtoRec *rec, uint16_t tag, const char *field, int *v)
{
    ProtoItem item;

    if (proto_rec_item(rec, tag, field, 0, &item) <= 0) {
	return -1;
    }
    if (item.len != 1) {
	return WrongSize(rec, field, &item, 1);
    }
    if (item.val[0] > 1) {
	return proto_rec_fail(rec, "field '%s' is %u, must be 0 or 1", field,
		item.val[0]);
    }
    *v = item.val[0];
    return 1;
}

/* proto_rec_fixed -- a required field of exactly len bytes. */
int
proto_rec_fixed(const ProtoRec *rec, uint16_t tag, const char *field,
	void *out, size_t len)
{
    ProtoItem item;

    if (proto_rec_item(rec, tag, field, 0, &item) <= 0) {
	return -1;
    }
    if (proto_item_fixed(&item, out, len) != 0) {
	return WrongSize(rec, field, &item, len);
    }
    return 1;
}

/* proto_rec_bytes -- a bytes field up to max, copied (malloc'ed). */
int
proto_rec_bytes(const ProtoRec *rec, uint16_t tag, const char *field,
	int flags, size_t max, uint8_t **out, size_t *len)
{
    ProtoItem item;
    int rc;

    *out = NULL;
    *len = 0;
    if ((rc = proto_rec_item(rec, tag, field, flags, &item)) <= 0) {
	return rc;
    }
    if (item.len > max) {
	return proto_rec_fail(rec, "field '%s' is %lu bytes long, at most %lu "
		"are allowed", field, (unsigned long) item.len,
		(unsigned long) max);
    }
    if ((flags & PROTO_F_NONEMPTY) && item.len == 0) {
	return proto_rec_fail(rec, "field '%s' is empty", field);
    }
    if ((*out = malloc(item.len ? item.len : 1)) == NULL) {
	return proto_rec_fail(rec, "no memory for field '%s' (%lu bytes)",
		field, (unsigned long) item.len);
    }
    if (item.len > 0) {
	memcpy(*out, item.val, item.len);
    }
    *len = item.len;
    return 1;
}

/* proto_rec_uuid -- a UUID field, which must be in canonical form. */
int
proto_rec_uuid(const ProtoRec *rec, uint16_t tag, const char *field,
	int flags, char out[41])
{
    char canon[41], quoted[64];
    char *s;
    int rc;

    out[0] = '\0';
    if ((rc = proto_rec_str(rec, tag, field, flags, 40, &s)) <= 0) {
	return rc;
    }
    if (proto_uuid_canon(s, canon, NULL) != 0 || strcmp(s, canon) != 0) {
	proto_quote(s, quoted, sizeof(quoted));
	free(s);
	return proto_rec_fail(rec, "field '%s' is '%s', not a UUID in "
		"canonical form", field, quoted);
    }
    memcpy(out, canon, strlen(canon) + 1);
    free(s);
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_rec_repeat, proto_rec_next --
 *	Repeated items.  The count is that of the items actually present:
 *	no count field is ever trusted for an allocation.
 *
 *----------------------------------------------------------------------
 */

int
proto_rec_repeat(const ProtoRec *rec, uint16_t tag, const char *plural,
	size_t max, size_t *n)
{
    ProtoReader r;
    ProtoItem it;

    *n = 0;
    proto_reader_init(&r, rec->data, rec->len);
    while (proto_next(&r, &it) == 1) {
	if (it.tag == tag && ++*n > max) {
	    return proto_rec_fail(rec, "more than %lu %s",
		    (unsigned long) max, plural);
	}
    }
    return 0;
}

/* proto_rec_next -- the next item with tag: 1, or 0 at the end. */
int
proto_rec_next(ProtoReader *r, uint16_t tag, ProtoItem *item)
{
    while (proto_next(r, item) == 1) {
	if (item->tag == tag) {
	    return 1;
	}
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_rec_unique_names, proto_rec_unique_ids --
 *	Duplicate checks over a sorted copy of pointers (n log n).
 *
 *----------------------------------------------------------------------
 */

static int
CompareStr(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

typedef struct IdRef {
    const uint8_t *p;
    size_t len;
} IdRef;

/* CompareId -- qsort order of ids (memcmp). */
static int
CompareId(const void *a, const void *b)
{
    const IdRef *x = a, *y = b;

    return memcmp(x->p, y->p, x->len);
}

/* proto_rec_unique_names -- refuses two equal names among n (n log n). */
int
proto_rec_unique_names(const ProtoRec *rec, char *const *names, size_t stride,
	size_t n, const char *what)
{
    const char **v;
    char quoted[80];
    size_t i;

    if (n < 2) {
	return 0;
    }
    if ((v = malloc(n * sizeof(*v))) == NULL) {
	return proto_rec_fail(rec, "no memory");
    }
    for (i = 0; i < n; i++) {
	v[i] = *(char *const *) ((const char *) names + i * stride);
    }
    qsort(v, n, sizeof(*v), CompareStr);
    for (i = 1; i < n; i++) {
	if (strcmp(v[i - 1], v[i]) == 0) {
	    proto_quote(v[i], quoted, sizeof(quoted));
	    free(v);
	    return proto_rec_fail(rec, "two %s are named '%s'", what, quoted);
	}
    }
    free(v);
    return 0;
}

/* proto_rec_unique_ids -- refuses two equal ids among n (n log n). */
int
proto_rec_unique_ids(const ProtoRec *rec, const uint8_t *ids, size_t stride,
	size_t idLen, size_t n, const char *what)
{
    IdRef *v;
    char hex[2 * 64 + 1];
    size_t i;

    if (n < 2) {
	return 0;
    }
    if ((v = malloc(n * sizeof(*v))) == NULL) {
	return proto_rec_fail(rec, "no memory");
    }
    for (i = 0; i < n; i++) {
	v[i].p = ids + i * stride;
	v[i].len = idLen;
    }
    qsort(v, n, sizeof(*v), CompareId);
    for (i = 1; i < n; i++) {
	if (memcmp(v[i - 1].p, v[i].p, idLen) == 0) {
	    proto_hex(v[i].p, idLen > 64 ? 64 : idLen, hex);
	    free(v);
	    return proto_rec_fail(rec, "two %s have the id %s", what, hex);
	}
    }
    free(v);
    return 0;
}
