/*
 * proto_tlv.c --
 *
 *	TLV records, the encoding of every spps message (docs/FORMATS.md,
 *	"TLV records"): items of tag (u16, big-endian), length (u32,
 *	big-endian) and value.  The writer (ProtoBuf) grows a buffer and
 *	remembers an allocation failure instead of reporting it at every
 *	call; the reader checks every length against the bytes left before
 *	it hands an item out.  Also the hex helpers of proto.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "proto.h"
#include "proto_int.h"

#define ITEM_HEADER 6		/* tag (2) + length (4) */

/*
 *----------------------------------------------------------------------
 *
 * proto_buf_init, proto_buf_free --
 *	An empty buffer; freeing cleanses the bytes first, because records
 *	often hold secrets (ticket secrets before sealing, key values).
 *
 *----------------------------------------------------------------------
 */

void
proto_buf_init(ProtoBuf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

/* proto_buf_free -- cleanses the bytes, frees them, leaves an empty buffer. */
void
proto_buf_free(ProtoBuf *b)
{
    proto_clear_free(b->data, b->cap);
    proto_buf_init(b);
}

/*
 *----------------------------------------------------------------------
 *
 * Reserve --
 *	Makes room for n more bytes.  The old buffer is cleansed when it is
 *	replaced, so no copy of a secret is left behind in freed memory.
 *	Returns a pointer to the n bytes, or NULL (and marks the buffer
 *	failed) on overflow or allocation failure.
 *
 *----------------------------------------------------------------------
 */

static uint8_t *
Reserve(ProtoBuf *b, size_t n)
{
    uint8_t *p;
    size_t cap;

    if (b->failed) {
	return NULL;
    }
    if (n > SIZE_MAX / 2 - b->len) {
	b->failed = 1;
	return NULL;
    }
    if (b->len + n > b->cap) {
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n) {
	    cap *= 2;
	}
	p = malloc(cap);
	if (p == NULL) {
	    b->failed = 1;
	    return NULL;
	}
	if (b->data != NULL) {
	    memcpy(p, b->data, b->len);
	    proto_clear_free(b->data, b->cap);
	}
	b->data = p;
	b->cap = cap;
    }
    p = b->data + b->len;
    b->len += n;
    return p;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_clear_free --
 *	Cleanses and frees memory from malloc (everything the protocol core
 *	hands out is malloc'ed, so callers may free it with free()).
 *
 *----------------------------------------------------------------------
 */

void
proto_clear_free(void *p, size_t len)
{
    if (p != NULL) {
	OPENSSL_cleanse(p, len);
	free(p);
    }
}

/* Big-endian stores and loads. */
void
proto_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}

/* proto_be32 -- stores v big-endian in 4 bytes. */
void
proto_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

/* proto_be64 -- stores v big-endian in 8 bytes. */
void
proto_be64(uint8_t *p, uint64_t v)
{
    proto_be32(p, (uint32_t) (v >> 32));
    proto_be32(p + 4, (uint32_t) v);
}

/* proto_get_be16 -- a big-endian u16. */
uint16_t
proto_get_be16(const uint8_t *p)
{
    return (uint16_t) ((p[0] << 8) | p[1]);
}

/* proto_get_be32 -- a big-endian u32. */
uint32_t
proto_get_be32(const uint8_t *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
	    | ((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

/* proto_get_be64 -- a big-endian u64. */
uint64_t
proto_get_be64(const uint8_t *p)
{
    return ((uint64_t) proto_get_be32(p) << 32) | proto_get_be32(p + 4);
}

/*
 *----------------------------------------------------------------------
 *
 * proto_buf_append --
 *	Raw bytes, no item header (for headers and TBS prefixes).
 *
 *----------------------------------------------------------------------
 */

void
proto_buf_append(ProtoBuf *b, const void *data, size_t len)
{
    uint8_t *p = Reserve(b, len);

    if (p != NULL && len > 0) {
	memcpy(p, data, len);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * proto_put_bytes and friends --
 *	One item.  A value longer than a u32 can say marks the buffer
 *	failed: the writer never emits a length it cannot represent.
 *
 *----------------------------------------------------------------------
 */

void
proto_put_bytes(ProtoBuf *b, uint16_t tag, const void *val, size_t len)
{
    uint8_t *p;

    if (len > UINT32_MAX || (len > 0 && val == NULL)) {
	b->failed = 1;
	return;
    }
    if ((p = Reserve(b, ITEM_HEADER + len)) == NULL) {
	return;
    }
    proto_be16(p, tag);
    proto_be32(p + 2, (uint32_t) len);
    if (len > 0) {
	memcpy(p + ITEM_HEADER, val, len);
    }
}

/* proto_put_u64 -- an 8-byte big-endian item. */
void
proto_put_u64(ProtoBuf *b, uint16_t tag, uint64_t v)
{
    uint8_t v8[8];

    proto_be64(v8, v);
    proto_put_bytes(b, tag, v8, 8);
}

/* proto_put_i64 -- an 8-byte two's complement item. */
void
proto_put_i64(ProtoBuf *b, uint16_t tag, int64_t v)
{
    proto_put_u64(b, tag, (uint64_t) v);
}

/* proto_put_u8 -- a one-byte item (flags, kinds). */
void
proto_put_u8(ProtoBuf *b, uint16_t tag, uint8_t v)
{
    proto_put_bytes(b, tag, &v, 1);
}

/* proto_put_str -- a text item (no NUL); NULL fails the buffer. */
void
proto_put_str(ProtoBuf *b, uint16_t tag, const char *s)
{
    if (s == NULL) {
	b->failed = 1;
	return;
    }
    proto_put_bytes(b, tag, s, strlen(s));
}

/*
 *----------------------------------------------------------------------
 *
 * proto_begin, proto_end --
 *	A nested record: proto_begin writes the tag and a placeholder
 *	length and returns where the item starts; proto_end fills in the
 *	length of what was written since.
 *
 *----------------------------------------------------------------------
 */

size_t
proto_begin(ProtoBuf *b, uint16_t tag)
{
    size_t mark = b->len;
    uint8_t *p = Reserve(b, ITEM_HEADER);

    if (p != NULL) {
	proto_be16(p, tag);
	proto_be32(p + 2, 0);
    }
    return mark;
}

/* proto_end -- fills in the length of the nested record started at mark. */
void
proto_end(ProtoBuf *b, size_t mark)
{
    size_t len;

    if (b->failed || mark + ITEM_HEADER > b->len) {
	b->failed = 1;
	return;
    }
    len = b->len - mark - ITEM_HEADER;
    if (len > UINT32_MAX) {
	b->failed = 1;
	return;
    }
    proto_be32(b->data + mark + 2, (uint32_t) len);
}

/*
 *----------------------------------------------------------------------
 *
 * proto_reader_init, proto_next, proto_find --
 *	Walk a record.  proto_next returns 1 with an item, 0 at the end, -1
 *	if what is left is not a whole item (a header cut short, or a length
 *	past the end); the reader then stays at the bad item.
 *
 *----------------------------------------------------------------------
 */

void
proto_reader_init(ProtoReader *r, const uint8_t *data, size_t len)
{
    r->p = data;
    r->end = data + (data != NULL ? len : 0);
}

/* proto_next -- the next item: 1, 0 at the end, -1 if it runs past the end. */
int
proto_next(ProtoReader *r, ProtoItem *item)
{
    size_t left = (size_t) (r->end - r->p);
    uint32_t len;

    if (left == 0) {
	return 0;
    }
    if (left < ITEM_HEADER) {
	return -1;
    }
    len = proto_get_be32(r->p + 2);
    if ((size_t) len > left - ITEM_HEADER) {
	return -1;
    }
    item->tag = proto_get_be16(r->p);
    item->len = len;
    item->val = r->p + ITEM_HEADER;
    r->p += ITEM_HEADER + (size_t) len;
    return 1;
}

/* proto_find -- the first item with tag: 1 found, 0 absent, -1 malformed. */
int
proto_find(const uint8_t *data, size_t len, uint16_t tag, ProtoItem *item)
{
    ProtoReader r;
    ProtoItem it;
    int rc;

    proto_reader_init(&r, data, len);
    while ((rc = proto_next(&r, &it)) == 1) {
	if (it.tag == tag) {
	    *item = it;
	    return 1;
	}
    }
    return rc;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_item_u64, proto_item_i64, proto_item_fixed --
 *	Fixed-size values: the length must be exactly right.
 *
 *----------------------------------------------------------------------
 */

int
proto_item_u64(const ProtoItem *item, uint64_t *v)
{
    if (item->len != 8) {
	return -1;
    }
    *v = proto_get_be64(item->val);
    return 0;
}

/* proto_item_i64 -- an 8-byte two's complement value. */
int
proto_item_i64(const ProtoItem *item, int64_t *v)
{
    uint64_t u;

    if (proto_item_u64(item, &u) != 0) {
	return -1;
    }
    /* Two's complement, without relying on implementation-defined casts. */
    if (u <= (uint64_t) INT64_MAX) {
	*v = (int64_t) u;
    } else {
	*v = -(int64_t) (~u) - 1;
    }
    return 0;
}

/* proto_item_fixed -- a value of exactly len bytes. */
int
proto_item_fixed(const ProtoItem *item, void *out, size_t len)
{
    if (item->len != len) {
	return -1;
    }
    if (len > 0) {
	memcpy(out, item->val, len);
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_utf8_valid --
 *	1 if s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 *	surrogates, nothing above U+10FFFF) without NUL bytes.
 *
 *----------------------------------------------------------------------
 */

int
proto_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
	uint8_t c = s[i];
	size_t n, k;
	uint32_t cp, min;

	if (c == 0) {
	    return 0;
	}
	if (c < 0x80) {
	    i++;
	    continue;
	} else if ((c & 0xE0) == 0xC0) {
	    n = 1; cp = c & 0x1F; min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
	    n = 2; cp = c & 0x0F; min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
	    n = 3; cp = c & 0x07; min = 0x10000;
	} else {
	    return 0;
	}
	if (len - i <= n) {
	    return 0;
	}
	for (k = 1; k <= n; k++) {
	    if ((s[i + k] & 0xC0) != 0x80) {
		return 0;
	    }
	    cp = (cp << 6) | (s[i + k] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
	    return 0;
	}
	i += n + 1;
    }
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_item_str --
 *	A string value: valid UTF-8 without NUL, at most PROTO_MAX_TEXT
 *	bytes (messages bound their fields tighter).  *s is malloc'ed.
 *
 *----------------------------------------------------------------------
 */

int
proto_item_str(const ProtoItem *item, char **s)
{
    char *copy;

    *s = NULL;
    if (item->len > PROTO_MAX_TEXT || !proto_utf8_valid(item->val, item->len)) {
	return -1;
    }
    if ((copy = malloc((size_t) item->len + 1)) == NULL) {
	return -1;
    }
    if (item->len > 0) {
	memcpy(copy, item->val, item->len);
    }
    copy[item->len] = '\0';
    *s = copy;
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_hex, proto_unhex --
 *	Lower-case hex out; exactly 2*len hex digits (either case) in.
 *
 *----------------------------------------------------------------------
 */

void
proto_hex(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
	out[2 * i] = digits[data[i] >> 4];
	out[2 * i + 1] = digits[data[i] & 0x0F];
    }
    out[2 * len] = '\0';
}

/* proto_hex_digit -- the value of a hex digit, -1 if it is not one. */
int
proto_hex_digit(int c)
{
    if (c >= '0' && c <= '9') {
	return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
	return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
	return c - 'A' + 10;
    }
    return -1;
}

/* proto_unhex -- exactly 2*len hex digits into len bytes. */
int
proto_unhex(const char *text, uint8_t *out, size_t len)
{
    size_t i;

    if (text == NULL || strlen(text) != 2 * len) {
	return -1;
    }
    for (i = 0; i < len; i++) {
	int hi = proto_hex_digit((unsigned char) text[2 * i]);
	int lo = proto_hex_digit((unsigned char) text[2 * i + 1]);

	if (hi < 0 || lo < 0) {
	    return -1;
	}
	out[i] = (uint8_t) ((hi << 4) | lo);
    }
    return 0;
}
