/*
 * proto_device.c --
 *
 *	The device-side messages of the SPPS protocol (proto_device.h): the
 *	authenticity check and the authorization code in its three key modes
 *	(the CoC a device sends is proto.h's proto_coc_encode).  The
 *	primitives are proto.h's (HKDF, AES-256-GCM, CMAC, P-384 keys).
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "proto.h"
#include "proto_int.h"
#include "proto_device.h"

#define AUTH_LABEL "spps device auth v1"
#define CODE_AAD_LABEL "spps authcode v1"

/* Limits of what a decoder accepts. */
#define MAX_CODE_KEYS 16
#define MAX_CODE_CIPHER 4096

/* Tags (docs/FORMATS.md, "Device protocol messages"). */
enum { SEC_DSN = 1, SEC_FK = 2, SEC_KFP = 3 };
enum { AUTH_DSN = 1, AUTH_DIE = 2, AUTH_CHALLENGE = 3, AUTH_CERT = 4,
       AUTH_EPHEMERAL = 5, AUTH_SIG = 6, AUTH_MAC = 7 };
enum { CODE_MODE = 1, CODE_E1 = 2, CODE_E2 = 3, CODE_CIPHER = 4 };
enum { PT_KIP = 1, PT_ACTION = 2, PT_TICKET = 3, PT_DESIGN = 4, PT_CODE_ID = 5,
       PT_KEY = 6 };
enum { KEY_NAME = 1, KEY_VALUE = 2 };

static const char *const keyModeNames[] = {NULL, "DFK", "KFP", "KFPE"};

/*
 * proto_key_mode --
 *	A key mode from its name; 0 for an unknown one.
 */
ProtoKeyMode
proto_key_mode(const char *name)
{
    int i;

    for (i = 1; i <= 3; i++) {
	if (name != NULL && strcmp(name, keyModeNames[i]) == 0) {
	    return (ProtoKeyMode) i;
	}
    }
    return (ProtoKeyMode) 0;
}

/*
 * proto_key_mode_name --
 *	The name of a key mode.
 */
const char *
proto_key_mode_name(ProtoKeyMode mode)
{
    return (mode >= PROTO_KEYMODE_DFK && mode <= PROTO_KEYMODE_KFPE)
	    ? keyModeNames[mode] : "?";
}

/*
 *----------------------------------------------------------------------
 *
 * Device keys.
 *
 *----------------------------------------------------------------------
 */

/*
 * proto_device_fk --
 *	A device's factory key: FK = HKDF(DFK-DB key, DSN, "spps dfk v1"),
 *	computed inside the M-HSM (and by the factory when it makes the
 *	device).
 */
int
proto_device_fk(const uint8_t dfkDbKey[PROTO_KEY], const uint8_t dsn[PROTO_DSN],
	uint8_t fk[PROTO_KEY], ProtoError *err)
{
    if (proto_hkdf(dfkDbKey, PROTO_KEY, dsn, PROTO_DSN, "spps dfk v1", fk,
	    PROTO_KEY) != 0) {
	return proto_err(err, "cannot derive the device factory key");
    }
    return 0;
}

/*
 * proto_per_device_key --
 *	A per-device user key from its base key and the DSN.
 */
int
proto_per_device_key(const uint8_t base[PROTO_KEY], const char *name,
	const uint8_t dsn[PROTO_DSN], uint8_t key[PROTO_KEY], ProtoError *err)
{
    char label[80];

    if (strlen(name) > 32) {
	return proto_err(err, "per-device key name '%.32s...' is too long", name);
    }
    snprintf(label, sizeof(label), "spps per-device key v1 %s", name);
    if (proto_hkdf(base, PROTO_KEY, dsn, PROTO_DSN, label, key, PROTO_KEY) != 0) {
	return proto_err(err, "cannot derive the per-device key %s", name);
    }
    return 0;
}

/*
 * proto_device_secrets_encode --
 *	The device secrets record the factory seals to the bench.
 */
int
proto_device_secrets_encode(const ProtoDeviceSecrets *s, ProtoBuf *out)
{
    proto_put_bytes(out, SEC_DSN, s->dsn, PROTO_DSN);
    proto_put_bytes(out, SEC_FK, s->fk, PROTO_KEY);
    if (s->hasKfp) {
	proto_put_bytes(out, SEC_KFP, s->kfp, PROTO_P384_PRIV);
    }
    return out->failed ? -1 : 0;
}

/*
 * proto_device_secrets_decode --
 *	Decodes the device secrets record; cleansed on failure.
 */
int
proto_device_secrets_decode(const uint8_t *body, size_t len,
	ProtoDeviceSecrets *s, ProtoError *err)
{
    ProtoRec rec;
    ProtoItem item;
    int rc;

    memset(s, 0, sizeof(*s));
    if (proto_rec_open(&rec, body, len, err, "device secrets") != 0
	    || proto_rec_fixed(&rec, SEC_DSN, "dsn", s->dsn, PROTO_DSN) < 0
	    || proto_rec_fixed(&rec, SEC_FK, "fk", s->fk, PROTO_KEY) < 0
	    || (rc = proto_rec_item(&rec, SEC_KFP, "kfp", PROTO_F_OPTIONAL,
		    &item)) < 0) {
	OPENSSL_cleanse(s, sizeof(*s));
	return -1;
    }
    if (rc == 1) {
	if (item.len != PROTO_P384_PRIV) {
	    OPENSSL_cleanse(s, sizeof(*s));
	    return proto_rec_fail(&rec, "field 'kfp' is %lu bytes, must be %d",
		    (unsigned long) item.len, PROTO_P384_PRIV);
	}
	memcpy(s->kfp, item.val, PROTO_P384_PRIV);
	s->hasKfp = 1;
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * Authenticity check.
 *
 *----------------------------------------------------------------------
 */

/*
 * proto_dev_auth_tbs --
 *	What a device's KFP signs in its authenticity answer: the
 *	challenge, the DSN and its session key D, under a label.
 */
int
proto_dev_auth_tbs(const uint8_t challenge[PROTO_NONCE],
	const uint8_t dsn[PROTO_DSN], const uint8_t d[PROTO_P384_PUB],
	ProtoBuf *out)
{
    proto_buf_append(out, AUTH_LABEL, strlen(AUTH_LABEL));
    proto_buf_append(out, challenge, PROTO_NONCE);
    proto_buf_append(out, dsn, PROTO_DSN);
    proto_buf_append(out, d, PROTO_P384_PUB);
    return out->failed ? -1 : 0;
}

/*
 * proto_dev_auth_mac --
 *	The answer of a device without KFP: a CMAC under a key derived
 *	from FK, over the challenge and the DSN.
 */
int
proto_dev_auth_mac(const uint8_t fk[PROTO_KEY],
	const uint8_t challenge[PROTO_NONCE], const uint8_t dsn[PROTO_DSN],
	uint8_t mac[PROTO_MAC], ProtoError *err)
{
    uint8_t key[PROTO_KEY], msg[PROTO_NONCE + PROTO_DSN];
    int rc;

    if (proto_hkdf(fk, PROTO_KEY, dsn, PROTO_DSN, AUTH_LABEL, key,
	    PROTO_KEY) != 0) {
	return proto_err(err, "cannot derive the device authentication key");
    }
    memcpy(msg, challenge, PROTO_NONCE);
    memcpy(msg + PROTO_NONCE, dsn, PROTO_DSN);
    rc = proto_cmac(key, msg, sizeof(msg), mac);
    OPENSSL_cleanse(key, sizeof(key));
    return rc != 0 ? proto_err(err, "AES-CMAC failed") : 0;
}

/*
 * proto_dev_auth_encode --
 *	Encodes an authenticity answer.
 */
int
proto_dev_auth_encode(const ProtoDevAuth *m, ProtoBuf *out)
{
    proto_put_bytes(out, AUTH_DSN, m->dsn, PROTO_DSN);
    proto_put_str(out, AUTH_DIE, m->die);
    proto_put_bytes(out, AUTH_CHALLENGE, m->challenge, PROTO_NONCE);
    if (m->hasKfp) {
	proto_cert_put(out, AUTH_CERT, &m->cert);
	proto_put_bytes(out, AUTH_EPHEMERAL, m->ephemeral, PROTO_P384_PUB);
	proto_put_bytes(out, AUTH_SIG, m->sig, PROTO_P384_SIG);
    } else {
	proto_put_bytes(out, AUTH_MAC, m->mac, PROTO_MAC);
    }
    return out->failed ? -1 : 0;
}

/*
 * proto_dev_auth_decode --
 *	Decodes an authenticity answer (a certificate, D and signature, or
 *	a MAC).
 */
int
proto_dev_auth_decode(const uint8_t *body, size_t len, ProtoDevAuth *m,
	ProtoError *err)
{
    ProtoRec rec;
    ProtoItem item;
    char *die = NULL;
    int rc;

    memset(m, 0, sizeof(*m));
    if (proto_rec_open(&rec, body, len, err, "device authenticity answer") != 0
	    || proto_rec_fixed(&rec, AUTH_DSN, "dsn", m->dsn, PROTO_DSN) < 0
	    || proto_rec_str(&rec, AUTH_DIE, "die", PROTO_F_NONEMPTY,
		    sizeof(m->die) - 1, &die) < 0
	    || proto_rec_fixed(&rec, AUTH_CHALLENGE, "challenge", m->challenge,
		    PROTO_NONCE) < 0
	    || (rc = proto_rec_item(&rec, AUTH_CERT, "certificate",
		    PROTO_F_OPTIONAL, &item)) < 0) {
	free(die);
	return -1;
    }
    strcpy(m->die, die);
    free(die);
    if (rc == 1) {
	m->hasKfp = 1;
	if (proto_rec_cert(&rec, AUTH_CERT, "certificate", &m->cert) < 0
		|| proto_rec_fixed(&rec, AUTH_EPHEMERAL, "ephemeral key",
			m->ephemeral, PROTO_P384_PUB) < 0
		|| proto_rec_fixed(&rec, AUTH_SIG, "signature", m->sig,
			PROTO_P384_SIG) < 0) {
	    return -1;
	}
    } else if (proto_rec_fixed(&rec, AUTH_MAC, "mac", m->mac, PROTO_MAC) < 0) {
	return -1;
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * Authorization code.
 *
 *----------------------------------------------------------------------
 */

/*
 * CodeAad --
 *	The AAD of an authorization code: it binds the code to one DSN,
 *	key mode and challenge (one device, one session).
 */
static int
CodeAad(const uint8_t dsn[PROTO_DSN], ProtoKeyMode mode,
	const uint8_t challenge[PROTO_NONCE], ProtoBuf *aad)
{
    uint8_t m = (uint8_t) mode;

    proto_buf_append(aad, CODE_AAD_LABEL, strlen(CODE_AAD_LABEL));
    proto_buf_append(aad, dsn, PROTO_DSN);
    proto_buf_append(aad, &m, 1);
    proto_buf_append(aad, challenge, PROTO_NONCE);
    return aad->failed ? -1 : 0;
}

/*
 * CodeKey --
 *	The code's AES key from the mode's key material, salted with the
 *	challenge.
 */
static int
CodeKey(ProtoKeyMode mode, const uint8_t *ikm, size_t ikmLen,
	const uint8_t challenge[PROTO_NONCE], uint8_t key[PROTO_KEY],
	ProtoError *err)
{
    static const char *const labels[] = {NULL, "spps authcode dfk v1",
	"spps authcode kfp v1", "spps authcode kfpe v1"};

    if (proto_hkdf(ikm, ikmLen, challenge, PROTO_NONCE, labels[mode], key,
	    PROTO_KEY) != 0) {
	return proto_err(err, "cannot derive the authorization code key");
    }
    return 0;
}

/*
 * CodePlainEncode --
 *	Encodes what a code carries.
 */
static int
CodePlainEncode(const ProtoAuthCode *c, ProtoBuf *out)
{
    size_t i, mark;

    proto_put_bytes(out, PT_KIP, c->kip, PROTO_KEY);
    proto_put_str(out, PT_ACTION, c->action);
    proto_put_bytes(out, PT_TICKET, c->ticketId, PROTO_TICKET_ID);
    proto_put_bytes(out, PT_DESIGN, c->designDigest, PROTO_DIGEST);
    proto_put_bytes(out, PT_CODE_ID, c->codeId, PROTO_CODE_ID);
    for (i = 0; i < c->nKeys; i++) {
	mark = proto_begin(out, PT_KEY);
	proto_put_str(out, KEY_NAME, c->keys[i].name);
	proto_put_bytes(out, KEY_VALUE, c->keys[i].data, c->keys[i].len);
	proto_end(out, mark);
    }
    return out->failed ? -1 : 0;
}

/*
 * proto_authcode_free --
 *	Frees a decoded code, cleansing its keys.
 */
void
proto_authcode_free(ProtoAuthCode *c)
{
    size_t i;

    free(c->action);
    for (i = 0; i < c->nKeys; i++) {
	free(c->keys[i].name);
	if (c->keys[i].data != NULL) {
	    OPENSSL_cleanse(c->keys[i].data, c->keys[i].len);
	    free(c->keys[i].data);
	}
    }
    free(c->keys);
    OPENSSL_cleanse(c, sizeof(*c));
}

/*
 * CodePlainDecode --
 *	Decodes what a code carries, refusing keys of the wrong size.
 */
static int
CodePlainDecode(const uint8_t *body, size_t len, ProtoAuthCode *c,
	ProtoError *err)
{
    ProtoRec rec, sub;
    ProtoReader r;
    ProtoItem item;
    size_t n, i;

    memset(c, 0, sizeof(*c));
    if (proto_rec_open(&rec, body, len, err, "authorization code") != 0
	    || proto_rec_fixed(&rec, PT_KIP, "kip", c->kip, PROTO_KEY) < 0
	    || proto_rec_enum(&rec, PT_ACTION, "action", proto_actions,
		    PROTO_F_NONEMPTY, &c->action) < 0
	    || proto_rec_fixed(&rec, PT_TICKET, "ticket id", c->ticketId,
		    PROTO_TICKET_ID) < 0
	    || proto_rec_fixed(&rec, PT_DESIGN, "design digest", c->designDigest,
		    PROTO_DIGEST) < 0
	    || proto_rec_fixed(&rec, PT_CODE_ID, "code id", c->codeId,
		    PROTO_CODE_ID) < 0
	    || proto_rec_repeat(&rec, PT_KEY, "per-device keys", MAX_CODE_KEYS,
		    &n) != 0) {
	goto error;
    }
    if (n > 0 && (c->keys = calloc(n, sizeof(*c->keys))) == NULL) {
	proto_rec_fail(&rec, "no memory");
	goto error;
    }
    proto_reader_init(&r, rec.data, rec.len);
    for (i = 0; i < n && proto_rec_next(&r, PT_KEY, &item); i++) {
	c->nKeys = i + 1;
	if (proto_rec_sub(&sub, &rec, &item, "key", i + 1) != 0
		|| proto_rec_str(&sub, KEY_NAME, "name", PROTO_F_NONEMPTY, 32,
			&c->keys[i].name) < 0
		|| proto_rec_bytes(&sub, KEY_VALUE, "value", 0, PROTO_KEY,
			&c->keys[i].data, &c->keys[i].len) < 0) {
	    goto error;
	}
	if (c->keys[i].len != PROTO_KEY) {
	    proto_rec_fail(&sub, "field 'value' is %lu bytes, must be %d",
		    (unsigned long) c->keys[i].len, PROTO_KEY);
	    goto error;
	}
    }
    return 0;
  error:
    proto_authcode_free(c);
    return -1;
}

/*
 * proto_authcode_seal --
 *	Encrypts a code to one device (proto_device.h): fresh ephemeral
 *	keys for KFP and KFPE, cleansed with every derived secret.
 */
int
proto_authcode_seal(const ProtoCodeTarget *t, const ProtoAuthCode *code,
	uint8_t **out, size_t *outLen, ProtoError *err)
{
    struct evp_pkey_st *e1 = NULL, *e2 = NULL;
    uint8_t E1[PROTO_P384_PUB], E2[PROTO_P384_PUB];
    uint8_t ikm[96], key[PROTO_KEY];
    size_t ikmLen = 0;
    ProtoBuf aad, pt, msg;
    uint8_t *ct = NULL;
    size_t ctLen = 0;
    int rc = -1;

    *out = NULL;
    *outLen = 0;
    proto_buf_init(&aad);
    proto_buf_init(&pt);
    proto_buf_init(&msg);
    switch (t->mode) {
    case PROTO_KEYMODE_DFK:
	if (t->fk == NULL) {
	    proto_err(err, "key mode DFK: no factory key");
	    goto done;
	}
	memcpy(ikm, t->fk, PROTO_KEY);
	ikmLen = PROTO_KEY;
	break;
    case PROTO_KEYMODE_KFP:
    case PROTO_KEYMODE_KFPE:
	if (t->kfp == NULL || (t->mode == PROTO_KEYMODE_KFPE && t->d == NULL)) {
	    proto_err(err, "key mode %s: the device's public key%s missing",
		    proto_key_mode_name(t->mode),
		    t->mode == PROTO_KEYMODE_KFPE ? "s are" : " is");
	    goto done;
	}
	if (proto_p384_generate(&e1, E1, err) != 0
		|| proto_p384_ecdh(e1, t->kfp, ikm, err) != 0) {
	    goto done;
	}
	ikmLen = 48;
	if (t->mode == PROTO_KEYMODE_KFPE) {
	    if (proto_p384_generate(&e2, E2, err) != 0
		    || proto_p384_ecdh(e2, t->d, ikm + 48, err) != 0) {
		goto done;
	    }
	    ikmLen = 96;
	}
	break;
    default:
	proto_err(err, "unknown key mode %d", (int) t->mode);
	goto done;
    }
    if (CodeKey(t->mode, ikm, ikmLen, t->challenge, key, err) != 0) {
	goto done;
    }
    if (CodeAad(t->dsn, t->mode, t->challenge, &aad) != 0
	    || CodePlainEncode(code, &pt) != 0) {
	proto_err(err, "authorization code: no memory");
	goto done;
    }
    if (proto_gcm_encrypt(key, aad.data, aad.len, pt.data, pt.len, &ct, &ctLen,
	    err) != 0) {
	goto done;
    }
    proto_put_u8(&msg, CODE_MODE, (uint8_t) t->mode);
    if (t->mode != PROTO_KEYMODE_DFK) {
	proto_put_bytes(&msg, CODE_E1, E1, PROTO_P384_PUB);
    }
    if (t->mode == PROTO_KEYMODE_KFPE) {
	proto_put_bytes(&msg, CODE_E2, E2, PROTO_P384_PUB);
    }
    proto_put_bytes(&msg, CODE_CIPHER, ct, ctLen);
    if (msg.failed) {
	proto_err(err, "authorization code: no memory");
	goto done;
    }
    *out = msg.data;
    *outLen = msg.len;
    msg.data = NULL;
    rc = 0;
  done:
    EVP_PKEY_free(e1);
    EVP_PKEY_free(e2);
    OPENSSL_cleanse(ikm, sizeof(ikm));
    OPENSSL_cleanse(key, sizeof(key));
    free(ct);
    proto_buf_free(&aad);
    proto_buf_free(&pt);
    proto_buf_free(&msg);
    return rc;
}

/*
 * proto_authcode_open --
 *	The device's side: opens a code with its own keys
 *	(proto_device.h); a code for another device or session does not
 *	decrypt.
 */
int
proto_authcode_open(const ProtoCodeKeys *k, const uint8_t *in, size_t inLen,
	ProtoAuthCode *code, ProtoKeyMode *modeOut, ProtoError *err)
{
    ProtoRec rec;
    ProtoItem item;
    uint8_t E1[PROTO_P384_PUB], E2[PROTO_P384_PUB];
    uint8_t ikm[96], key[PROTO_KEY], *ct = NULL, *pt = NULL;
    size_t ikmLen = 0, ctLen = 0, ptLen = 0;
    ProtoKeyMode mode;
    ProtoBuf aad;
    int rc = -1;

    memset(code, 0, sizeof(*code));
    proto_buf_init(&aad);
    if (proto_rec_open(&rec, in, inLen, err, "authorization code") != 0
	    || proto_rec_item(&rec, CODE_MODE, "key mode", 0, &item) < 0) {
	goto done;
    }
    if (item.len != 1 || item.val[0] < PROTO_KEYMODE_DFK
	    || item.val[0] > PROTO_KEYMODE_KFPE) {
	proto_rec_fail(&rec, "field 'key mode' is not DFK, KFP or KFPE");
	goto done;
    }
    mode = (ProtoKeyMode) item.val[0];
    if (proto_rec_bytes(&rec, CODE_CIPHER, "ciphertext", PROTO_F_NONEMPTY,
	    MAX_CODE_CIPHER, &ct, &ctLen) < 0) {
	goto done;
    }
    switch (mode) {
    case PROTO_KEYMODE_DFK:
	if (k->fk == NULL) {
	    proto_err(err, "authorization code: key mode DFK, and the device "
		    "has no factory key");
	    goto done;
	}
	memcpy(ikm, k->fk, PROTO_KEY);
	ikmLen = PROTO_KEY;
	break;
    default:
	if (k->kfp == NULL) {
	    proto_err(err, "authorization code: key mode %s needs a factory "
		    "key pair (KFP), and this device has none",
		    proto_key_mode_name(mode));
	    goto done;
	}
	if (mode == PROTO_KEYMODE_KFPE && k->d == NULL) {
	    proto_err(err, "authorization code: key mode KFPE, and this "
		    "session has no ephemeral key");
	    goto done;
	}
	if (proto_rec_fixed(&rec, CODE_E1, "ephemeral key 1", E1,
		PROTO_P384_PUB) < 0
		|| proto_p384_ecdh(k->kfp, E1, ikm, err) != 0) {
	    goto done;
	}
	ikmLen = 48;
	if (mode == PROTO_KEYMODE_KFPE) {
	    if (proto_rec_fixed(&rec, CODE_E2, "ephemeral key 2", E2,
		    PROTO_P384_PUB) < 0
		    || proto_p384_ecdh(k->d, E2, ikm + 48, err) != 0) {
		goto done;
	    }
	    ikmLen = 96;
	}
	break;
    }
    if (CodeKey(mode, ikm, ikmLen, k->challenge, key, err) != 0) {
	goto done;
    }
    if (CodeAad(k->dsn, mode, k->challenge, &aad) != 0) {
	proto_err(err, "authorization code: no memory");
	goto done;
    }
    if (proto_gcm_decrypt(key, aad.data, aad.len, ct, ctLen, &pt, &ptLen,
	    NULL) != 0) {
	proto_err(err, "authorization code (key mode %s) does not decrypt: it "
		"is not for this device and session, or it was altered",
		proto_key_mode_name(mode));
	goto done;
    }
    if (CodePlainDecode(pt, ptLen, code, err) != 0) {
	goto done;
    }
    *modeOut = mode;
    rc = 0;
  done:
    OPENSSL_cleanse(ikm, sizeof(ikm));
    OPENSSL_cleanse(key, sizeof(key));
    if (pt != NULL) {
	OPENSSL_cleanse(pt, ptLen);
	free(pt);
    }
    free(ct);
    proto_buf_free(&aad);
    return rc;
}
