/*
 * proto_container.c --
 *
 *	The envelope of every spps file (docs/FORMATS.md, "Envelope"):
 *
 *	    "SPPS" | u8 version (1) | u8 type | u8 auth | u8 flags |
 *	    u32 stored body length | stored body | u16 auth length | auth
 *
 *	The authenticator covers the header and the stored body.  A body
 *	may be stored zlib-compressed (flags bit 0); it is then inflated as
 *	a stream and refused as soon as it grows past the caller's bound,
 *	whatever any size field says.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <zlib.h>

#include "proto.h"
#include "proto_int.h"

#define HEADER      12
#define VERSION     1
#define FLAG_ZLIB   0x01

/*
 *----------------------------------------------------------------------
 *
 * proto_file_type_name --
 *	What a file of this type is called in messages.
 *
 *----------------------------------------------------------------------
 */

const char *
proto_file_type_name(ProtoFileType type)
{
    switch (type) {
    case PROTO_FILE_JDC:         return "job data container";
    case PROTO_FILE_KEYSET:      return "keyset";
    case PROTO_FILE_JM_PROJECT:  return "Job Manager project";
    case PROTO_FILE_REQUEST:     return "job request";
    case PROTO_FILE_REPLY:       return "job reply";
    case PROTO_FILE_JOB:         return "job";
    case PROTO_FILE_STATUS:      return "job status";
    case PROTO_FILE_FPE_PROJECT: return "FlashPro Express project";
    case PROTO_FILE_BITSTREAM:   return "programming data";
    case PROTO_FILE_SETTINGS:    return "settings";
    case PROTO_FILE_BENCH:       return "bench state";
    case PROTO_FILE_CERT:        return "certificate";
    }
    return NULL;
}

/* AuthLength -- the authenticator size of a kind, 0 if unknown. */
static size_t
AuthLength(ProtoAuth auth)
{
    switch (auth) {
    case PROTO_AUTH_DIGEST:    return PROTO_DIGEST;
    case PROTO_AUTH_MAC:       return PROTO_DIGEST;
    case PROTO_AUTH_SIGNATURE: return PROTO_P384_SIG;
    }
    return 0;
}

/* "a job reply", "an unknown type 77" */
static void
Article(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s %s", strchr("aeiouAEIOU", name[0]) ? "an" : "a",
	    name);
}

/*
 *----------------------------------------------------------------------
 *
 * SamplePays --
 *	For a large body, whether its first SAMPLE bytes shrink by at least
 *	1/16 at zlib's fastest level: encrypted bitstreams do not, and
 *	deflating tens of MB of them would cost a second for nothing.
 *
 *----------------------------------------------------------------------
 */

#define SAMPLE    (256u * 1024)
#define SAMPLE_AT (1024u * 1024)

static int
SamplePays(const uint8_t *body)
{
    uLongf outLen = compressBound(SAMPLE);
    uint8_t *out = malloc(outLen);
    int pays;

    if (out == NULL) {
	return 1;		/* let the real attempt decide */
    }
    pays = compress2(out, &outLen, body, SAMPLE, 1) == Z_OK
	    && outLen < SAMPLE - SAMPLE / 16;
    proto_clear_free(out, compressBound(SAMPLE));
    return pays;
}

/*
 *----------------------------------------------------------------------
 *
 * Deflate --
 *	zlib (level 6) of body; 1 if the result is smaller, 0 if it does
 *	not pay (the caller then stores the body as is), -1 on failure.
 *
 *----------------------------------------------------------------------
 */

static int
Deflate(const uint8_t *body, size_t len, uint8_t **out, size_t *outLen)
{
    z_stream zs;
    uint8_t *buf;
    size_t cap;
    int rc;

    *out = NULL;
    if (len < 64) {
	return 0;
    }
    if (len > SAMPLE_AT && !SamplePays(body)) {
	return 0;		/* ciphertext, already compressed data */
    }
    memset(&zs, 0, sizeof(zs));
    if (deflateInit(&zs, 6) != Z_OK) {
	return -1;
    }
    cap = len - 1;		/* anything longer does not pay */
    if ((buf = malloc(cap)) == NULL) {
	deflateEnd(&zs);
	return -1;
    }
    zs.next_out = buf;
    zs.avail_out = 0;
    zs.next_in = (Bytef *) body;
    zs.avail_in = 0;
    do {
	size_t inLeft = len - (size_t) ((const uint8_t *) zs.next_in - body);
	size_t outLeft = cap - (size_t) (zs.next_out - buf);

	if (zs.avail_in == 0) {
	    zs.avail_in = inLeft > (1u << 30) ? (1u << 30) : (uInt) inLeft;
	}
	if (zs.avail_out == 0) {
	    if (outLeft == 0) {
		rc = Z_BUF_ERROR;
		break;
	    }
	    zs.avail_out = outLeft > (1u << 30) ? (1u << 30) : (uInt) outLeft;
	}
	rc = deflate(&zs, (size_t) ((const uint8_t *) zs.next_in - body)
		+ zs.avail_in == len ? Z_FINISH : Z_NO_FLUSH);
    } while (rc == Z_OK);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
	proto_clear_free(buf, cap);
	return rc == Z_BUF_ERROR ? 0 : -1;
    }
    *out = buf;
    *outLen = (size_t) (zs.next_out - buf);
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * Inflate --
 *	Inflates a whole zlib stream, refusing output beyond maxBody, a
 *	stream that ends early or carries bytes after its end.  Returns 0,
 *	or -1 with msg saying why.
 *
 *----------------------------------------------------------------------
 */

static int
Inflate(const uint8_t *in, size_t inLen, size_t maxBody, uint8_t **out,
	size_t *outLen, const char **msg)
{
    z_stream zs;
    uint8_t *buf = NULL, *nb;
    size_t cap = 0, len = 0;
    int rc;

    *out = NULL;
    *outLen = 0;
    if (maxBody > SIZE_MAX / 8) {
	maxBody = SIZE_MAX / 8;
    }
    memset(&zs, 0, sizeof(zs));
    if (inflateInit(&zs) != Z_OK) {
	*msg = "cannot start zlib";
	return -1;
    }
    zs.next_in = (Bytef *) in;
    zs.avail_in = 0;
    for (;;) {
	size_t inUsed = (size_t) ((const uint8_t *) zs.next_in - in);

	if (zs.avail_in == 0 && inUsed < inLen) {
	    size_t left = inLen - inUsed;

	    zs.avail_in = left > (1u << 30) ? (1u << 30) : (uInt) left;
	}
	if (len == cap) {
	    size_t ncap;

	    if (cap >= maxBody + 1) {
		*msg = "the body inflates past its size limit";
		rc = Z_DATA_ERROR;
		break;
	    }
	    ncap = cap ? cap * 2 : (inLen < 4096 ? 16384 : inLen * 4);
	    if (ncap > maxBody + 1) {
		ncap = maxBody + 1;	/* one byte over says "too big" */
	    }
	    if ((nb = malloc(ncap)) == NULL) {
		*msg = "no memory to inflate the body";
		rc = Z_MEM_ERROR;
		break;
	    }
	    if (buf != NULL) {
		memcpy(nb, buf, len);
		proto_clear_free(buf, cap);
	    }
	    buf = nb;
	    cap = ncap;
	}
	zs.next_out = buf + len;
	zs.avail_out = cap - len > (1u << 30) ? (1u << 30) : (uInt) (cap - len);
	rc = inflate(&zs, Z_NO_FLUSH);
	len = (size_t) (zs.next_out - buf);
	if (len > maxBody) {
	    *msg = "the body inflates past its size limit";
	    rc = Z_DATA_ERROR;
	    break;
	}
	if (rc == Z_STREAM_END) {
	    break;
	}
	if (rc == Z_BUF_ERROR && zs.avail_in == 0
		&& (size_t) ((const uint8_t *) zs.next_in - in) == inLen) {
	    *msg = "the compressed body ends early";
	    rc = Z_DATA_ERROR;
	    break;
	}
	if (rc != Z_OK && rc != Z_BUF_ERROR) {
	    *msg = zs.msg != NULL ? zs.msg : "the compressed body is corrupt";
	    break;
	}
    }
    if (rc == Z_STREAM_END
	    && (size_t) ((const uint8_t *) zs.next_in - in) != inLen) {
	*msg = "bytes follow the end of the compressed body";
	rc = Z_DATA_ERROR;
    }
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
	if (buf != NULL) {
	    proto_clear_free(buf, cap);
	}
	return -1;
    }
    *out = buf;
    *outLen = len;
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_container_write --
 *	See proto.h.
 *
 *----------------------------------------------------------------------
 */

int
proto_container_write(ProtoFileType type, ProtoAuth auth, int compress,
	const uint8_t *body, size_t bodyLen, const uint8_t *macKey,
	ProtoSignFn signFn, void *signCtx, uint8_t **out, size_t *outLen,
	ProtoError *err)
{
    const char *name = proto_file_type_name(type);
    size_t authLen = AuthLength(auth), storedLen, total;
    uint8_t *packed = NULL, *image;
    const uint8_t *stored = body;
    int flags = 0, rc;

    *out = NULL;
    *outLen = 0;
    if (name == NULL) {
	return proto_err(err, "cannot write a file of unknown type %d",
		(int) type);
    }
    if (authLen == 0) {
	return proto_err(err, "%s: unknown authenticator kind %d", name,
		(int) auth);
    }
    if ((auth == PROTO_AUTH_MAC && macKey == NULL)
	    || (auth == PROTO_AUTH_SIGNATURE && signFn == NULL)) {
	return proto_err(err, "%s: no %s to authenticate it", name,
		auth == PROTO_AUTH_MAC ? "MAC key" : "signer");
    }
    if (body == NULL && bodyLen > 0) {
	return proto_err(err, "%s: no body", name);
    }
    storedLen = bodyLen;
    if (compress) {
	if ((rc = Deflate(body, bodyLen, &packed, &storedLen)) < 0) {
	    return proto_err(err, "%s: zlib compression failed", name);
	}
	if (rc == 1) {
	    stored = packed;
	    flags |= FLAG_ZLIB;
	} else {
	    storedLen = bodyLen;
	}
    }
    if (storedLen > UINT32_MAX) {
	if (packed != NULL) {
	    proto_clear_free(packed, storedLen);
	}
	return proto_err(err, "%s: the body is too large (%lu bytes)", name,
		(unsigned long) storedLen);
    }
    total = HEADER + storedLen + 2 + authLen;
    if ((image = malloc(total)) == NULL) {
	if (packed != NULL) {
	    proto_clear_free(packed, storedLen);
	}
	return proto_err(err, "%s: no memory for %lu bytes", name,
		(unsigned long) total);
    }
    memcpy(image, "SPPS", 4);
    image[4] = VERSION;
    image[5] = (uint8_t) type;
    image[6] = (uint8_t) auth;
    image[7] = (uint8_t) flags;
    proto_be32(image + 8, (uint32_t) storedLen);
    if (storedLen > 0) {
	memcpy(image + HEADER, stored, storedLen);
    }
    if (packed != NULL) {
	proto_clear_free(packed, storedLen);
    }
    proto_be16(image + HEADER + storedLen, (uint16_t) authLen);
    switch (auth) {
    case PROTO_AUTH_DIGEST:
	rc = proto_sha384(image, HEADER + storedLen,
		image + HEADER + storedLen + 2);
	if (rc != 0) {
	    proto_err(err, "%s: SHA-384 failed", name);
	}
	break;
    case PROTO_AUTH_MAC:
	rc = proto_hmac_sha384(macKey, PROTO_KEY, image, HEADER + storedLen,
		image + HEADER + storedLen + 2);
	if (rc != 0) {
	    proto_err(err, "%s: HMAC-SHA-384 failed", name);
	}
	break;
    default:
	rc = signFn(signCtx, image, HEADER + storedLen,
		image + HEADER + storedLen + 2, err);
	break;
    }
    if (rc != 0) {
	free(image);
	return -1;
    }
    *out = image;
    *outLen = total;
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_container_read --
 *	See proto.h.  expected 0 accepts any type (c->type says which).
 *
 *----------------------------------------------------------------------
 */

int
proto_container_read(const uint8_t *image, size_t len, ProtoFileType expected,
	const uint8_t *macKey, size_t maxBody, const char *what,
	ProtoContainer *c, ProtoError *err)
{
    const char *expName = proto_file_type_name(expected), *typeName, *zmsg;
    char have[80], want[80];
    size_t storedLen, authLen, wantAuth;
    uint8_t digest[PROTO_DIGEST];
    const uint8_t *authp;
    int type, auth, flags;

    memset(c, 0, sizeof(*c));
    if (what == NULL) {
	what = expName != NULL ? expName : "file";
    }
    if (image == NULL || len < 4 || memcmp(image, "SPPS", 4) != 0) {
	return proto_err(err, "%s is not a spps file (no SPPS header)", what);
    }
    if (len < HEADER + 2) {
	return proto_err(err, "%s is truncated: %lu bytes, shorter than a "
		"spps file header", what, (unsigned long) len);
    }
    if (image[4] != VERSION) {
	return proto_err(err, "%s is in spps file format version %u; this "
		"spps reads version %d", what, image[4], VERSION);
    }
    type = image[5];
    auth = image[6];
    flags = image[7];
    typeName = proto_file_type_name((ProtoFileType) type);
    if (expected != 0 && type != (int) expected) {
	if (typeName != NULL) {
	    Article(typeName, have, sizeof(have));
	} else {
	    snprintf(have, sizeof(have), "a file of unknown type %d", type);
	}
	Article(expName != NULL ? expName : "?", want, sizeof(want));
	return proto_err(err, "%s is %s, not %s", what, have, want);
    }
    if (typeName == NULL) {
	return proto_err(err, "%s is a file of unknown type %d", what, type);
    }
    if ((wantAuth = AuthLength((ProtoAuth) auth)) == 0) {
	return proto_err(err, "%s has an unknown authenticator kind %d", what,
		auth);
    }
    if (flags & ~FLAG_ZLIB) {
	return proto_err(err, "%s has unknown flags 0x%02x", what, flags);
    }
    storedLen = proto_get_be32(image + 8);
    if (storedLen > len - HEADER - 2) {
	return proto_err(err, "%s is truncated: its body says %lu bytes, "
		"%lu are left", what, (unsigned long) storedLen,
		(unsigned long) (len - HEADER - 2));
    }
    authLen = proto_get_be16(image + HEADER + storedLen);
    if (authLen != wantAuth) {
	return proto_err(err, "%s: its authenticator is %lu bytes, must be "
		"%lu", what, (unsigned long) authLen, (unsigned long) wantAuth);
    }
    if (len - HEADER - storedLen - 2 < authLen) {
	return proto_err(err, "%s is truncated: its authenticator is cut "
		"short", what);
    }
    if (len - HEADER - storedLen - 2 > authLen) {
	return proto_err(err, "%s has %lu unexpected bytes after its end",
		what, (unsigned long) (len - HEADER - storedLen - 2 - authLen));
    }
    authp = image + HEADER + storedLen + 2;
    if (macKey != NULL && auth != PROTO_AUTH_MAC) {
	/* The caller expects its HSM's MAC: a digest anyone can compute, or
	 * a signature nobody checks here, is no substitute. */
	return proto_err(err, "%s is not authenticated by this HSM (its "
		"authenticator is a %s)", what,
		auth == PROTO_AUTH_DIGEST ? "digest" : "signature");
    }
    switch ((ProtoAuth) auth) {
    case PROTO_AUTH_DIGEST:
	if (proto_sha384(image, HEADER + storedLen, digest) != 0) {
	    return proto_err(err, "%s: SHA-384 failed", what);
	}
	if (CRYPTO_memcmp(digest, authp, PROTO_DIGEST) != 0) {
	    return proto_err(err, "%s is corrupt: its SHA-384 digest does not "
		    "match its content", what);
	}
	break;
    case PROTO_AUTH_MAC:
	if (macKey == NULL) {
	    return proto_err(err, "%s is MACed, and no key was given to check "
		    "it", what);
	}
	if (proto_hmac_sha384(macKey, PROTO_KEY, image, HEADER + storedLen,
		digest) != 0) {
	    return proto_err(err, "%s: HMAC-SHA-384 failed", what);
	}
	if (CRYPTO_memcmp(digest, authp, PROTO_DIGEST) != 0) {
	    return proto_err(err, "%s fails authentication: it was altered, "
		    "or written by another HSM", what);
	}
	break;
    case PROTO_AUTH_SIGNATURE:
	memcpy(c->signature, authp, PROTO_P384_SIG);
	break;
    }
    OPENSSL_cleanse(digest, sizeof(digest));
    if (flags & FLAG_ZLIB) {
	if (Inflate(image + HEADER, storedLen, maxBody, &c->body, &c->bodyLen,
		&zmsg) != 0) {
	    return proto_err(err, "%s: %s (at most %lu bytes)", what, zmsg,
		    (unsigned long) maxBody);
	}
    } else {
	if (storedLen > maxBody) {
	    return proto_err(err, "%s: the body is %lu bytes, more than the "
		    "%lu allowed", what, (unsigned long) storedLen,
		    (unsigned long) maxBody);
	}
	if ((c->body = malloc(storedLen ? storedLen : 1)) == NULL) {
	    return proto_err(err, "%s: no memory for %lu bytes", what,
		    (unsigned long) storedLen);
	}
	if (storedLen > 0) {
	    memcpy(c->body, image + HEADER, storedLen);
	}
	c->bodyLen = storedLen;
    }
    c->type = (ProtoFileType) type;
    c->auth = (ProtoAuth) auth;
    c->signedPart = image;
    c->signedLen = HEADER + storedLen;
    return 0;
}

/* proto_container_free -- cleanses and frees the body, zeroes c. */
void
proto_container_free(ProtoContainer *c)
{
    if (c->body != NULL) {
	proto_clear_free(c->body, c->bodyLen ? c->bodyLen : 1);
    }
    memset(c, 0, sizeof(*c));
}
