/*
 * proto_cert.c --
 *
 *	Certificates issued by the vendor root (docs/FORMATS.md,
 *	"Certificates"): a TLV record of kind, subject, die, keys, serial,
 *	time of issue and the root's ECDSA P-384 signature over the TBS (the
 *	same record without the signature, after a context item).  Kinds:
 *	the root itself (self-signed), devices (subject DSN, die, KFP
 *	public key), U-HSMs (UUID, identity key) and M-HSMs (UUID, identity
 *	key, sealing key).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "proto_int.h"

/* Tags of a certificate record. */
enum {
    CERT_KIND = 1, CERT_SUBJECT = 2, CERT_DIE = 3, CERT_SIGN_KEY = 4,
    CERT_ENC_KEY = 5, CERT_SERIAL = 6, CERT_ISSUED = 7, CERT_SIGNATURE = 8
};

#define CERT_CONTEXT "spps certificate v1"

/*
 *----------------------------------------------------------------------
 *
 * proto_cert_kind_name --
 *	"vendor root", "device", "U-HSM", "M-HSM" (NULL if unknown).
 *
 *----------------------------------------------------------------------
 */

const char *
proto_cert_kind_name(ProtoCertKind kind)
{
    switch (kind) {
    case PROTO_CERT_ROOT:   return "vendor root";
    case PROTO_CERT_DEVICE: return "device";
    case PROTO_CERT_UHSM:   return "U-HSM";
    case PROTO_CERT_MHSM:   return "M-HSM";
    }
    return NULL;
}

/* 1 if s is exactly 2*PROTO_DSN lower-case hex digits. */
static int
IsDsnHex(const char *s)
{
    size_t i;

    for (i = 0; i < 2 * PROTO_DSN; i++) {
	if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
	    return 0;
	}
    }
    return s[i] == '\0';
}

/*
 *----------------------------------------------------------------------
 *
 * CheckShape --
 *	The fields a kind must and must not have: NULL if fine, else a
 *	phrase saying what is wrong.
 *
 *----------------------------------------------------------------------
 */

static const char *
CheckShape(const ProtoCert *cert)
{
    char canon[41];

    if (memchr(cert->subject, 0, sizeof(cert->subject)) == NULL
	    || memchr(cert->die, 0, sizeof(cert->die)) == NULL) {
	return "its subject or die is not terminated";
    }
    switch (cert->kind) {
    case PROTO_CERT_ROOT:
	if (cert->subject[0] == '\0') {
	    return "the root has no subject";
	}
	break;
    case PROTO_CERT_DEVICE:
	if (!IsDsnHex(cert->subject)) {
	    return "a device's subject must be its DSN, 32 lower-case hex "
		    "digits";
	}
	if (cert->die[0] == '\0') {
	    return "a device certificate must name its die";
	}
	break;
    case PROTO_CERT_UHSM:
    case PROTO_CERT_MHSM:
	if (proto_uuid_canon(cert->subject, canon, NULL) != 0
		|| strcmp(canon, cert->subject) != 0) {
	    return "an HSM's subject must be its UUID in canonical form";
	}
	break;
    default:
	return "unknown kind";
    }
    if (cert->kind != PROTO_CERT_DEVICE && cert->die[0] != '\0') {
	return "only device certificates name a die";
    }
    if ((cert->kind == PROTO_CERT_MHSM) != (cert->hasEncKey != 0)) {
	return cert->kind == PROTO_CERT_MHSM
		? "an M-HSM certificate must carry a sealing key"
		: "only M-HSM certificates carry a sealing key";
    }
    return NULL;
}

/*
 *----------------------------------------------------------------------
 *
 * PutFields --
 *	The fields of a certificate, without its signature.
 *
 *----------------------------------------------------------------------
 */

static void
PutFields(ProtoBuf *b, const ProtoCert *cert)
{
    proto_put_u8(b, CERT_KIND, (uint8_t) cert->kind);
    proto_put_str(b, CERT_SUBJECT, cert->subject);
    if (cert->kind == PROTO_CERT_DEVICE) {
	proto_put_str(b, CERT_DIE, cert->die);
    }
    proto_put_bytes(b, CERT_SIGN_KEY, cert->signKey, PROTO_P384_PUB);
    if (cert->hasEncKey) {
	proto_put_bytes(b, CERT_ENC_KEY, cert->encKey, PROTO_P384_PUB);
    }
    proto_put_u64(b, CERT_SERIAL, cert->serial);
    proto_put_u64(b, CERT_ISSUED, cert->issued);
}

/*
 *----------------------------------------------------------------------
 *
 * proto_cert_tbs, proto_cert_encode, proto_cert_put --
 *	The signed bytes (context item + fields), the whole record, and the
 *	record nested under a tag.
 *
 *----------------------------------------------------------------------
 */

int
proto_cert_tbs(const ProtoCert *cert, ProtoBuf *out)
{
    if (CheckShape(cert) != NULL) {
	return -1;
    }
    proto_put_str(out, PROTO_TAG_CONTEXT, CERT_CONTEXT);
    PutFields(out, cert);
    return out->failed ? -1 : 0;
}

/* proto_cert_encode -- the whole certificate record (signature included). */
int
proto_cert_encode(const ProtoCert *cert, ProtoBuf *out)
{
    if (CheckShape(cert) != NULL) {
	out->failed = 1;
	return -1;
    }
    PutFields(out, cert);
    proto_put_bytes(out, CERT_SIGNATURE, cert->signature, PROTO_P384_SIG);
    return out->failed ? -1 : 0;
}

/* proto_cert_put -- the certificate record nested under tag. */
void
proto_cert_put(ProtoBuf *b, uint16_t tag, const ProtoCert *cert)
{
    size_t mark = proto_begin(b, tag);

    proto_cert_encode(cert, b);
    proto_end(b, mark);
}

/*
 *----------------------------------------------------------------------
 *
 * proto_cert_decode_rec --
 *	A certificate from its record; where the record is comes with rec.
 *
 *----------------------------------------------------------------------
 */

int
proto_cert_decode_rec(const ProtoRec *rec, ProtoCert *cert)
{
    ProtoItem item;
    char *s = NULL;
    const char *bad;
    int rc, kind;

    memset(cert, 0, sizeof(*cert));
    if (proto_rec_item(rec, CERT_KIND, "kind", 0, &item) < 0) {
	return -1;
    }
    if (item.len != 1) {
	return proto_rec_fail(rec, "field 'kind' is %lu bytes, must be 1",
		(unsigned long) item.len);
    }
    kind = item.val[0];
    if (proto_cert_kind_name((ProtoCertKind) kind) == NULL) {
	return proto_rec_fail(rec, "field 'kind' is %d, not a certificate "
		"kind", kind);
    }
    cert->kind = (ProtoCertKind) kind;
    if (proto_rec_str(rec, CERT_SUBJECT, "subject", PROTO_F_NONEMPTY, 40,
	    &s) < 0) {
	return -1;
    }
    memcpy(cert->subject, s, strlen(s) + 1);
    free(s);
    rc = proto_rec_str(rec, CERT_DIE, "die",
	    kind == PROTO_CERT_DEVICE ? PROTO_F_NONEMPTY : PROTO_F_OPTIONAL,
	    sizeof(cert->die) - 1, &s);
    if (rc < 0) {
	return -1;
    }
    if (rc > 0) {
	memcpy(cert->die, s, strlen(s) + 1);
	free(s);
	if (kind != PROTO_CERT_DEVICE) {
	    return proto_rec_fail(rec, "a %s certificate has a field 'die'",
		    proto_cert_kind_name(cert->kind));
	}
    }
    if (proto_rec_fixed(rec, CERT_SIGN_KEY, "signKey", cert->signKey,
	    PROTO_P384_PUB) < 0) {
	return -1;
    }
    if ((rc = proto_rec_item(rec, CERT_ENC_KEY, "encKey", PROTO_F_OPTIONAL,
	    &item)) < 0) {
	return -1;
    }
    if (rc > 0) {
	if (proto_rec_fixed(rec, CERT_ENC_KEY, "encKey", cert->encKey,
		PROTO_P384_PUB) < 0) {
	    return -1;
	}
	cert->hasEncKey = 1;
    }
    if (proto_rec_u64(rec, CERT_SERIAL, "serial", &cert->serial) < 0
	    || proto_rec_u64(rec, CERT_ISSUED, "issued", &cert->issued) < 0
	    || proto_rec_fixed(rec, CERT_SIGNATURE, "signature",
		    cert->signature, PROTO_P384_SIG) < 0) {
	return -1;
    }
    if ((bad = CheckShape(cert)) != NULL) {
	return proto_rec_fail(rec, "%s", bad);
    }
    return 0;
}

/* proto_cert_decode -- a certificate from its record ("certificate: ..."). */
int
proto_cert_decode(const uint8_t *data, size_t len, ProtoCert *cert,
	ProtoError *err)
{
    ProtoRec rec;

    memset(cert, 0, sizeof(*cert));
    if (proto_rec_open(&rec, data, len, err, "certificate") != 0) {
	return -1;
    }
    return proto_cert_decode_rec(&rec, cert);
}

/* proto_cert_get -- a certificate from a nested item. */
int
proto_cert_get(const ProtoItem *item, ProtoCert *cert, ProtoError *err)
{
    return proto_cert_decode(item->val, item->len, cert, err);
}

/* A certificate field of a message: "<where>: certificate 'uhsmCert': ..." */
int
proto_rec_cert(const ProtoRec *rec, uint16_t tag, const char *field,
	ProtoCert *cert)
{
    ProtoItem item;
    ProtoRec sub;
    char name[64];

    memset(cert, 0, sizeof(*cert));
    if (proto_rec_item(rec, tag, field, 0, &item) < 0) {
	return -1;
    }
    snprintf(name, sizeof(name), "field '%.40s'", field);
    if (proto_rec_sub(&sub, rec, &item, name, 0) != 0) {
	return -1;
    }
    return proto_cert_decode_rec(&sub, cert);
}

/*
 *----------------------------------------------------------------------
 *
 * proto_cert_verify --
 *	The certificate is of the kind expected, well formed, its keys are
 *	points of the curve, and the vendor root signed it.
 *
 *----------------------------------------------------------------------
 */

int
proto_cert_verify(const ProtoCert *cert, ProtoCertKind kind,
	const uint8_t root[PROTO_P384_PUB], ProtoError *err)
{
    const char *have = proto_cert_kind_name(cert->kind);
    const char *want = proto_cert_kind_name(kind);
    char subject[64];
    const char *bad;
    ProtoBuf tbs;
    ProtoError verr;
    int rc;

    if (want == NULL) {
	return proto_err(err, "certificate check: unknown kind %d", (int) kind);
    }
    if (have == NULL) {
	return proto_err(err, "certificate of unknown kind %d, not a %s "
		"certificate", (int) cert->kind, want);
    }
    proto_quote(cert->subject, subject, sizeof(subject));
    if (cert->kind != kind) {
	return proto_err(err, "the certificate of %s is a%s %s certificate, "
		"not a%s %s certificate", subject,
		have[0] == 'M' ? "n" : "", have,
		want[0] == 'M' ? "n" : "", want);
    }
    if ((bad = CheckShape(cert)) != NULL) {
	return proto_err(err, "the %s certificate of %s is malformed: %s",
		have, subject, bad);
    }
    if (!proto_p384_valid(cert->signKey)
	    || (cert->hasEncKey && !proto_p384_valid(cert->encKey))) {
	return proto_err(err, "the %s certificate of %s carries a key that "
		"is not a P-384 point", have, subject);
    }
    if (kind == PROTO_CERT_ROOT
	    && memcmp(cert->signKey, root, PROTO_P384_PUB) != 0) {
	return proto_err(err, "the vendor root certificate '%s' is not the "
		"trusted vendor root", subject);
    }
    proto_buf_init(&tbs);
    if (proto_cert_tbs(cert, &tbs) != 0) {
	proto_buf_free(&tbs);
	return proto_err(err, "the %s certificate of %s: no memory", have,
		subject);
    }
    rc = proto_verify_p384(root, tbs.data, tbs.len, cert->signature, &verr);
    proto_buf_free(&tbs);
    if (rc != 0) {
	return proto_err(err, "the %s certificate of %s was not issued by "
		"the trusted vendor root (%s)", have, subject, verr.msg);
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_cert_fingerprint --
 *	SHA-384 of the certificate's record (signature included).
 *
 *----------------------------------------------------------------------
 */

int
proto_cert_fingerprint(const ProtoCert *cert, uint8_t out[PROTO_DIGEST])
{
    ProtoBuf b;
    int rc;

    proto_buf_init(&b);
    rc = proto_cert_encode(cert, &b) == 0
	    && proto_sha384(b.data, b.len, out) == 0 ? 0 : -1;
    proto_buf_free(&b);
    return rc;
}
