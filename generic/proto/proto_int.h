/*
 * proto_int.h --
 *
 *	Internals shared by the modules of generic/proto/: big-endian
 *	helpers, error formatting, and the record decoder that every message
 *	decoder uses so that each refusal names the message, the item and
 *	the field ("job file: ticket 2: field 'action' is missing").  Not for
 *	the layers above (they use proto.h).
 */

#ifndef SPPS_PROTO_INT_H
#define SPPS_PROTO_INT_H

#include <stdarg.h>

#include "proto.h"

/* Bounds of decoded values (docs/FORMATS.md, "TLV records"). */
#define PROTO_MAX_TEXT     65536	/* any string item */
#define PROTO_MAX_NAME     256		/* names: jobs, tasks, tickets, devices... */
#define PROTO_MAX_VALUE    4096		/* short texts: features, setting values */

/* Big-endian stores and loads. */
void proto_be16(uint8_t *p, uint16_t v);
void proto_be32(uint8_t *p, uint32_t v);
void proto_be64(uint8_t *p, uint64_t v);
uint16_t proto_get_be16(const uint8_t *p);
uint32_t proto_get_be32(const uint8_t *p);
uint64_t proto_get_be64(const uint8_t *p);

/* Raw bytes (no item header), and a one-byte item. */
void proto_buf_append(ProtoBuf *b, const void *data, size_t len);
void proto_put_u8(ProtoBuf *b, uint16_t tag, uint8_t v);

int proto_utf8_valid(const uint8_t *s, size_t len);
int proto_hex_digit(int c);

/* proto_err -- fills err (if not NULL) and returns -1. */
int proto_err(ProtoError *err, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(printf, 2, 3)))
#endif
	;
/* proto_err_ossl -- "what: <OpenSSL reason>", OpenSSL's queue drained. */
int proto_err_ossl(ProtoError *err, const char *what);
/* proto_quote -- a printable excerpt of untrusted text for messages. */
void proto_quote(const char *text, char *out, size_t outLen);

/*
 * ProtoRec --
 *	A record being decoded, and where it is for messages ("job file:
 *	ticket 2").  proto_rec_open checks that the record is a sequence of
 *	whole items; the getters find a field by tag, refusing it when it is
 *	missing (if required), present twice, or of the wrong size or kind.
 */
typedef struct ProtoRec {
    const uint8_t *data;
    size_t len;
    char where[200];
    ProtoError *err;
} ProtoRec;

int proto_rec_open(ProtoRec *rec, const uint8_t *data, size_t len,
	ProtoError *err, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(printf, 5, 6)))
#endif
	;
/* Opens the nested record in item as "<parent where>: <name> <index>". */
int proto_rec_sub(ProtoRec *sub, const ProtoRec *parent, const ProtoItem *item,
	const char *name, size_t index);
int proto_rec_fail(const ProtoRec *rec, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* Field flags. */
#define PROTO_F_OPTIONAL 1	/* absent is fine */
#define PROTO_F_NONEMPTY 2	/* strings: at least one character */

/* 1 found (once), 0 absent and optional, -1 refused. */
int proto_rec_item(const ProtoRec *rec, uint16_t tag, const char *field,
	int flags, ProtoItem *item);
int proto_rec_str(const ProtoRec *rec, uint16_t tag, const char *field,
	int flags, size_t max, char **out);
/* A string that must be one of choices (NULL-terminated). */
int proto_rec_enum(const ProtoRec *rec, uint16_t tag, const char *field,
	const char *const *choices, int flags, char **out);
int proto_rec_u64(const ProtoRec *rec, uint16_t tag, const char *field,
	uint64_t *v);
/* A count or index: 0 .. INT64_MAX. */
int proto_rec_count_field(const ProtoRec *rec, uint16_t tag, const char *field,
	int64_t *v);
/* maxDevices: >= 1, or PROTO_UNLIMITED. */
int proto_rec_max_devices(const ProtoRec *rec, uint16_t tag, const char *field,
	int64_t *v);
int proto_rec_bool(const ProtoRec *rec, uint16_t tag, const char *field,
	int *v);
int proto_rec_fixed(const ProtoRec *rec, uint16_t tag, const char *field,
	void *out, size_t len);
int proto_rec_bytes(const ProtoRec *rec, uint16_t tag, const char *field,
	int flags, size_t max, uint8_t **out, size_t *len);
/* A canonical UUID (proto_uuid_canon's form). */
int proto_rec_uuid(const ProtoRec *rec, uint16_t tag, const char *field,
	int flags, char out[41]);

/*
 * Repeated items: proto_rec_repeat counts the items with tag (refusing
 * more than max, "job file: more than 4096 tickets"); then the caller
 * walks them with proto_rec_next.
 */
int proto_rec_repeat(const ProtoRec *rec, uint16_t tag, const char *plural,
	size_t max, size_t *n);
int proto_rec_next(ProtoReader *r, uint16_t tag, ProtoItem *item);

/* Refuses duplicates among n strings or n fixed-size ids. */
int proto_rec_unique_names(const ProtoRec *rec, char *const *names,
	size_t stride, size_t n, const char *what);
int proto_rec_unique_ids(const ProtoRec *rec, const uint8_t *ids,
	size_t stride, size_t idLen, size_t n, const char *what);

/* Shared choices. */
extern const char *const proto_actions[];	/* PROGRAM VERIFY ERASE */
extern const char *const proto_key_modes[];	/* DFK KFP KFPE */
extern const char *const proto_end_types[];	/* COMPLETED TERMINATED */

/* Certificates inside messages (proto_cert.c). */
int proto_cert_decode_rec(const ProtoRec *rec, ProtoCert *cert);
int proto_rec_cert(const ProtoRec *rec, uint16_t tag, const char *field,
	ProtoCert *cert);

/* The first item of every signed or MACed TBS: a context string. */
#define PROTO_TAG_CONTEXT 0xFFF0

#endif /* SPPS_PROTO_INT_H */
