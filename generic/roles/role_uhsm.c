/*
 * role_uhsm.c --
 *
 *	The U-HSM role (role_uhsm.h, docs/PROTOCOL.md): provisioning,
 *	keysets, the job request, reply validation, job export and status
 *	validation.  Runs inside the security boundary: it reaches keys only
 *	through the engine (role_common.h), holds clear secrets (ticket keys,
 *	keyset keys, KIPs) only within one call, and cleanses them.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "roles/role_uhsm.h"

/* The role's record in the HSM's NVM (a firmware blob). */
#define RECORD_BLOB "uhsm.identity"

/* Caps on what we accept from a peer's file. */
#define MAX_REPLY   (1024u * 1024)
#define MAX_STATUS  (64u * 1024 * 1024)

/*
 * Bitstreams are encrypted with no AAD: proto.h defines the cipher as
 * IV || AES-256-GCM(KIP, body) || tag.  The header fields a CM could
 * relabel are bound elsewhere: the design digest (SHA-384 of the body)
 * and key mode travel in the sealed ticket secrets and the code.
 */

struct RoleUhsm {
    RoleHsm *hsm;
    hsm_hdl_t keyStore;
    uint32_t masterId, identityId;
    char uuid[41], masterUuid[41];
    ProtoCert cert;
    uint8_t root[PROTO_P384_PUB];
    uint64_t provisioned;
};

enum {
    REC_UUID = 1, REC_MASTER_UUID = 2, REC_MASTER_ID = 3, REC_IDENTITY_ID = 4,
    REC_CERT = 5, REC_ROOT = 6, REC_PROVISIONED = 7
};

/* Fail -- fills err with a formatted sentence; returns -1. */
static int
Fail(ProtoError *err, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(printf, 2, 3)))
#endif
	;

static int
Fail(ProtoError *err, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
    }
    return -1;
}

/*
 * SetWhy --
 *	Stores a failure condition if the caller wants it.
 */
static void
SetWhy(RoleFail *why, RoleFail value)
{
    if (why != NULL) {
	*why = value;
    }
}

/*
 * MasterKey --
 *	The master key as a RoleKey (for role_wrap / role_unwrap).
 */
static RoleKey
MasterKey(RoleUhsm *u)
{
    RoleKey k;

    k.hsm = u->hsm;
    k.keyStore = u->keyStore;
    k.keyId = u->masterId;
    return k;
}

/*
 * IdentityKey --
 *	The identity key as a RoleKey (for role_sign).
 */
static RoleKey
IdentityKey(RoleUhsm *u)
{
    RoleKey k;

    k.hsm = u->hsm;
    k.keyStore = u->keyStore;
    k.keyId = u->identityId;
    return k;
}

/*
 *----------------------------------------------------------------------
 *
 * HsmRandom --
 *	Random bytes from the HSM's own generator (keys, ticket keys, KIPs,
 *	nonces the U-HSM commits to).
 *
 *----------------------------------------------------------------------
 */

static int
HsmRandom(RoleHsm *hsm, uint8_t *out, size_t len, ProtoError *err)
{
    open_svc_rng_args_t args;
    op_get_random_args_t op;
    hsm_hdl_t rng;
    hsm_err_t e;

    memset(&args, 0, sizeof(args));
    if ((e = hsm_open_rng_service(hsm->session, &args, &rng)) != HSM_NO_ERROR) {
	return role_hsm_error(err, "U-HSM random generator", e);
    }
    op.output = out;
    op.random_size = (uint32_t) len;
    e = hsm_get_random(rng, &op);
    hsm_close_rng_service(rng);
    if (e != HSM_NO_ERROR) {
	return role_hsm_error(err, "U-HSM random generator", e);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Provisioning                                                         */
/* ------------------------------------------------------------------ */

static int
EncodeRecord(const RoleUhsm *u, ProtoBuf *b)
{
    proto_put_str(b, REC_UUID, u->uuid);
    proto_put_str(b, REC_MASTER_UUID, u->masterUuid);
    proto_put_u64(b, REC_MASTER_ID, u->masterId);
    proto_put_u64(b, REC_IDENTITY_ID, u->identityId);
    proto_cert_put(b, REC_CERT, &u->cert);
    proto_put_bytes(b, REC_ROOT, u->root, PROTO_P384_PUB);
    proto_put_u64(b, REC_PROVISIONED, u->provisioned);
    return b->failed ? -1 : 0;
}

/* Reads a text item into a fixed buffer of a canonical UUID. */
static int
RecordUuid(const uint8_t *data, size_t len, uint16_t tag, char out[41])
{
    ProtoItem item;
    char canon[41];

    if (proto_find(data, len, tag, &item) != 1 || item.len == 0
	    || item.len > 40) {
	return -1;
    }
    memcpy(out, item.val, item.len);
    out[item.len] = '\0';
    if (proto_uuid_canon(out, canon, NULL) != 0 || strcmp(canon, out) != 0) {
	return -1;
    }
    return 0;
}

/*
 * DecodeRecord --
 *	Reads the U-HSM record (blob uhsm.identity); a damaged one is
 *	refused naming the HSM.
 */
static int
DecodeRecord(RoleUhsm *u, const uint8_t *data, size_t len, ProtoError *err)
{
    ProtoItem item;
    uint64_t v;

    if (RecordUuid(data, len, REC_UUID, u->uuid) != 0
	    || RecordUuid(data, len, REC_MASTER_UUID, u->masterUuid) != 0
	    || proto_find(data, len, REC_MASTER_ID, &item) != 1
	    || proto_item_u64(&item, &v) != 0 || v == 0 || v > UINT32_MAX) {
	goto bad;
    }
    u->masterId = (uint32_t) v;
    if (proto_find(data, len, REC_IDENTITY_ID, &item) != 1
	    || proto_item_u64(&item, &v) != 0 || v == 0 || v > UINT32_MAX) {
	goto bad;
    }
    u->identityId = (uint32_t) v;
    if (proto_find(data, len, REC_CERT, &item) != 1
	    || proto_cert_get(&item, &u->cert, err) != 0
	    || proto_find(data, len, REC_ROOT, &item) != 1
	    || proto_item_fixed(&item, u->root, PROTO_P384_PUB) != 0
	    || proto_find(data, len, REC_PROVISIONED, &item) != 1
	    || proto_item_u64(&item, &u->provisioned) != 0) {
	goto bad;
    }
    return 0;

  bad:
    Fail(err, "U-HSM record '%s' in %s is damaged",
	    RECORD_BLOB, u->hsm->dir);
    return -1;
}

/*
 * role_uhsm_open --
 *	The U-HSM role of an HSM: 1 if provisioned, 0 if not, -1 on error.
 */
int
role_uhsm_open(RoleHsm *hsm, RoleUhsm **uOut, ProtoError *err)
{
    RoleUhsm *u;
    uint8_t *data = NULL;
    size_t len = 0;
    int found = 0;

    *uOut = NULL;
    if (role_blob_read(hsm, RECORD_BLOB, &data, &len, &found, err) != 0) {
	return -1;
    }
    if (!found) {
	return 0;
    }
    if ((u = calloc(1, sizeof(*u))) == NULL) {
	free(data);
	Fail(err, "out of memory");
	return -1;
    }
    u->hsm = hsm;
    if (DecodeRecord(u, data, len, err) != 0
	    || role_key_store_open(hsm, ROLE_FW_STORE_UHSM, &u->keyStore,
		    err) != 0) {
	free(data);
	free(u);
	return -1;
    }
    free(data);
    *uOut = u;
    return 1;
}

/* The work of role_uhsm_provision, inside the HSM's transaction. */
typedef struct ProvisionCtx {
    RoleHsm *hsm;
    const char *uuid, *masterUuid;
    const uint8_t *root;
    RoleCertifyFn certify;
    void *certifyCtx;
    RoleUhsm *u;
    RoleFail why;
    ProtoError *err;
} ProvisionCtx;

/*
 * ProvisionInTransaction --
 *	The provisioning itself, under the HSM's transaction lock: uses a
 *	record another process wrote meanwhile, else makes the keys, has
 *	the identity certified, checks the certificate, writes the record.
 */
static hsm_err_t
ProvisionInTransaction(hsm_hdl_t session, void *clientData)
{
    ProvisionCtx *pc = clientData;
    RoleUhsm *u = pc->u;
    uint8_t *data = NULL;
    size_t len = 0;
    int found = 0;
    uint8_t pub[PROTO_P384_PUB];
    ProtoBuf b;
    ProtoCert cert;

    (void) session;
    /* Someone else may have provisioned it since we looked. */
    if (role_blob_read(pc->hsm, RECORD_BLOB, &data, &len, &found,
	    pc->err) != 0) {
	pc->why = ROLE_FAIL_HSM;
	return HSM_GENERAL_ERROR;
    }
    if (found) {
	int rc = DecodeRecord(u, data, len, pc->err);

	free(data);
	if (rc != 0) {
	    pc->why = ROLE_FAIL_CORRUPT;
	    return HSM_GENERAL_ERROR;
	}
	return HSM_NO_ERROR;
    }
    if (role_key_store_open(pc->hsm, ROLE_FW_STORE_UHSM, &u->keyStore,
	    pc->err) != 0
	    || role_key_generate(pc->hsm, u->keyStore, HSM_KEY_TYPE_AES_256,
		    &u->masterId, NULL, 0, pc->err) != 0
	    || role_key_generate(pc->hsm, u->keyStore,
		    HSM_KEY_TYPE_ECDSA_NIST_P384, &u->identityId, pub,
		    sizeof(pub), pc->err) != 0) {
	pc->why = ROLE_FAIL_HSM;
	return HSM_GENERAL_ERROR;
    }
    memset(&cert, 0, sizeof(cert));
    cert.kind = PROTO_CERT_UHSM;
    snprintf(cert.subject, sizeof(cert.subject), "%s", pc->uuid);
    memcpy(cert.signKey, pub, PROTO_P384_PUB);
    if (pc->certify(pc->certifyCtx, &cert, pc->err) != 0) {
	pc->why = ROLE_FAIL_CERT;
	return HSM_GENERAL_ERROR;
    }
    /* Trust the certificate only once it verifies against the root. */
    if (proto_cert_verify(&cert, PROTO_CERT_UHSM, pc->root, pc->err) != 0
	    || strcmp(cert.subject, pc->uuid) != 0
	    || memcmp(cert.signKey, pub, PROTO_P384_PUB) != 0) {
	if (pc->err->msg[0] == '\0') {
	    Fail(pc->err, "the certificate "
		    "issued is not for this U-HSM's identity key");
	}
	pc->why = ROLE_FAIL_CERT;
	return HSM_GENERAL_ERROR;
    }
    u->cert = cert;
    snprintf(u->uuid, sizeof(u->uuid), "%s", pc->uuid);
    snprintf(u->masterUuid, sizeof(u->masterUuid), "%s", pc->masterUuid);
    memcpy(u->root, pc->root, PROTO_P384_PUB);
    u->provisioned = (uint64_t) time(NULL);
    proto_buf_init(&b);
    if (EncodeRecord(u, &b) != 0
	    || role_blob_write(pc->hsm, RECORD_BLOB, b.data, b.len,
		    pc->err) != 0) {
	if (b.failed) {
	    Fail(pc->err, "out of memory");
	}
	proto_buf_free(&b);
	pc->why = ROLE_FAIL_HSM;
	return HSM_GENERAL_ERROR;
    }
    proto_buf_free(&b);
    return HSM_NO_ERROR;
}

/*
 * role_uhsm_provision --
 *	Provisions the U-HSM role (role_uhsm.h): one transaction; the
 *	UUIDs must be those of any record found.
 */
int
role_uhsm_provision(RoleHsm *hsm, const char *uuid, const char *masterUuid,
	const uint8_t root[PROTO_P384_PUB], RoleCertifyFn certify,
	void *certifyCtx, RoleUhsm **uOut, RoleFail *why, ProtoError *err)
{
    ProvisionCtx pc;
    hsm_err_t e;
    RoleUhsm *u;

    *uOut = NULL;
    SetWhy(why, ROLE_FAIL_NONE);
    if ((u = calloc(1, sizeof(*u))) == NULL) {
	Fail(err, "out of memory");
	SetWhy(why, ROLE_FAIL_HSM);
	return -1;
    }
    u->hsm = hsm;
    err->msg[0] = '\0';
    pc.hsm = hsm;
    pc.uuid = uuid;
    pc.masterUuid = masterUuid;
    pc.root = root;
    pc.certify = certify;
    pc.certifyCtx = certifyCtx;
    pc.u = u;
    pc.why = ROLE_FAIL_NONE;
    pc.err = err;
    e = hsm_fw_transaction(hsm->session, ProvisionInTransaction, &pc);
    if (e != HSM_NO_ERROR) {
	if (pc.why == ROLE_FAIL_NONE) {
	    role_hsm_error(err, "U-HSM provisioning", e);
	    pc.why = ROLE_FAIL_HSM;
	}
	SetWhy(why, pc.why);
	free(u);
	return -1;
    }
    if (u->keyStore == 0 && role_key_store_open(hsm, ROLE_FW_STORE_UHSM,
	    &u->keyStore, err) != 0) {
	SetWhy(why, ROLE_FAIL_HSM);
	free(u);
	return -1;
    }
    if (strcmp(u->uuid, uuid) != 0 || strcmp(u->masterUuid, masterUuid) != 0) {
	Fail(err, "U-HSM in %s was provisioned "
		"meanwhile with UUID %s and master key UUID %s", hsm->dir,
		u->uuid, u->masterUuid);
	SetWhy(why, ROLE_FAIL_STATE);
	free(u);
	return -1;
    }
    *uOut = u;
    return 0;
}

/*
 * role_uhsm_close --
 *	Forgets the role (the keys stay in the HSM).
 */
void
role_uhsm_close(RoleUhsm *u)
{
    if (u != NULL) {
	OPENSSL_cleanse(u, sizeof(*u));
	free(u);
    }
}

RoleHsm *role_uhsm_hsm(const RoleUhsm *u) { return u->hsm; }
const char *role_uhsm_uuid(const RoleUhsm *u) { return u->uuid; }
const char *role_uhsm_master_uuid(const RoleUhsm *u) { return u->masterUuid; }
const ProtoCert *role_uhsm_cert(const RoleUhsm *u) { return &u->cert; }
uint64_t role_uhsm_provisioned_at(const RoleUhsm *u) { return u->provisioned; }

/* ------------------------------------------------------------------ */
/* Keysets                                                              */
/* ------------------------------------------------------------------ */

#define N_KEY_SLOTS 13		/* jm_key_names */

/* The clear keys of a keyset, one slot per jm_key_names entry. */
typedef struct KeySlots {
    int have[N_KEY_SLOTS];
    uint8_t value[N_KEY_SLOTS][PROTO_KEY];
} KeySlots;

/*
 * SlotsClear --
 *	Cleanses the clear keys of a keyset.
 */
static void
SlotsClear(KeySlots *s)
{
    OPENSSL_cleanse(s, sizeof(*s));
}

/*
 *----------------------------------------------------------------------
 *
 * KeysetOpen --
 *	Reads and unlocks a keyset inside the U-HSM: the ticket key unwraps
 *	under our master key with the header as AAD, and the keys decrypt
 *	under the keyset key.  Fills hdr (public) and slots (secret).
 *
 *----------------------------------------------------------------------
 */

static int
KeysetOpen(RoleUhsm *u, const uint8_t *image, size_t len, const char *what,
	JmKeyset *hdr, KeySlots *slots, RoleFail *why, ProtoError *err)
{
    ProtoBuf aad;
    RoleKey master = MasterKey(u);
    uint8_t *tk = NULL, *pt = NULL;
    size_t tkLen = 0, ptLen = 0, n = 0, i;
    uint8_t kk[PROTO_KEY];
    ProtoNamedBytes *keys = NULL;
    int rc = -1;

    memset(slots, 0, sizeof(*slots));
    proto_buf_init(&aad);
    if (jm_keyset_read(image, len, what, hdr, err) != 0) {
	SetWhy(why, ROLE_FAIL_CORRUPT);
	return -1;
    }
    if (strcmp(hdr->masterUuid, u->masterUuid) != 0) {
	Fail(err, "%s was made under master key "
		"UUID %s (U-HSM %s); this U-HSM's master key UUID is %s",
		what, hdr->masterUuid, hdr->uhsmUuid, u->masterUuid);
	SetWhy(why, ROLE_FAIL_KEY);
	goto done;
    }
    if (jm_keyset_header(hdr, &aad) != 0) {
	Fail(err, "out of memory");
	SetWhy(why, ROLE_FAIL_HSM);
	goto done;
    }
    if (role_unwrap(&master, aad.data, aad.len, hdr->wrappedTicketKey,
	    hdr->wrappedLen, &tk, &tkLen, err) != 0 || tkLen != PROTO_KEY) {
	Fail(err, "%s: its ticket key does not "
		"unwrap under this U-HSM's master key: the file was altered, "
		"or made by another U-HSM with the same master key UUID", what);
	SetWhy(why, ROLE_FAIL_AUTH);
	goto done;
    }
    if (proto_hkdf(tk, tkLen, hdr->id, JM_KEYSET_ID, "spps keyset v1", kk,
	    sizeof(kk)) != 0
	    || proto_gcm_decrypt(kk, aad.data, aad.len, hdr->sealedKeys,
		    hdr->sealedLen, &pt, &ptLen, err) != 0) {
	Fail(err, "%s: its keys do not decrypt: "
		"the file was altered", what);
	SetWhy(why, ROLE_FAIL_AUTH);
	goto done;
    }
    if (jm_keys_decode(pt, ptLen, &keys, &n, err) != 0) {
	SetWhy(why, ROLE_FAIL_CORRUPT);
	goto done;
    }
    for (i = 0; i < n; i++) {
	int k = jm_key_index(keys[i].name);

	slots->have[k] = 1;
	memcpy(slots->value[k], keys[i].data, PROTO_KEY);
    }
    /* The header must list exactly the keys inside. */
    if (n != hdr->nNames) {
	goto mismatch;
    }
    for (i = 0; i < hdr->nNames; i++) {
	if (!slots->have[jm_key_index(hdr->names[i])]) {
	    goto mismatch;
	}
    }
    rc = 0;
    goto done;

  mismatch:
    Fail(err, "%s: the keys inside are not the "
	    "ones its header lists", what);
    SetWhy(why, ROLE_FAIL_AUTH);

  done:
    OPENSSL_cleanse(kk, sizeof(kk));
    if (tk != NULL) {
	OPENSSL_clear_free(tk, tkLen);
    }
    if (pt != NULL) {
	OPENSSL_clear_free(pt, ptLen);
    }
    jm_keys_free(keys, n);
    proto_buf_free(&aad);
    if (rc != 0) {
	SlotsClear(slots);
	jm_keyset_free(hdr);
    }
    return rc;
}

/*
 * role_uhsm_keyset_check --
 *	Proves a keyset usable by this U-HSM (role_uhsm.h).
 */
int
role_uhsm_keyset_check(RoleUhsm *u, const uint8_t *image, size_t len,
	const char *what, JmKeyset *header, RoleFail *why, ProtoError *err)
{
    KeySlots slots;
    int rc;

    SetWhy(why, ROLE_FAIL_NONE);
    rc = KeysetOpen(u, image, len, what, header, &slots, why, err);
    SlotsClear(&slots);
    return rc;
}

/*
 * role_uhsm_keyset_create --
 *	Makes a keyset file (role_uhsm.h): source keys, plain values,
 *	then HSM-generated keys; a fresh id and ticket key.
 */
int
role_uhsm_keyset_create(RoleUhsm *u, const uint8_t *source,
	size_t sourceLen, const char *sourceWhat, const ProtoNamedBytes *plain,
	size_t nPlain, const char *origin, uint8_t **image, size_t *len,
	RoleFail *why, ProtoError *err)
{
    KeySlots slots;
    JmKeyset ks;
    RoleKey master = MasterKey(u);
    ProtoNamedBytes keys[N_KEY_SLOTS];
    char *names[N_KEY_SLOTS];
    uint8_t tk[PROTO_KEY], kk[PROTO_KEY];
    ProtoBuf aad, rec;
    size_t i, n = 0;
    int rc = -1;

    *image = NULL;
    SetWhy(why, ROLE_FAIL_NONE);
    memset(&ks, 0, sizeof(ks));
    proto_buf_init(&aad);
    proto_buf_init(&rec);
    memset(&slots, 0, sizeof(slots));
    if (source != NULL) {
	JmKeyset srcHdr;

	if (KeysetOpen(u, source, sourceLen, sourceWhat, &srcHdr, &slots, why,
		err) != 0) {
	    return -1;
	}
	jm_keyset_free(&srcHdr);
    }
    for (i = 0; i < nPlain; i++) {
	int k = jm_key_index(plain[i].name);

	if (k < 0 || plain[i].len != PROTO_KEY) {
	    Fail(err, "key '%s' is not a keyset "
		    "key of %d bytes", plain[i].name, PROTO_KEY);
	    SetWhy(why, ROLE_FAIL_MISMATCH);
	    goto done;
	}
	slots.have[k] = 1;
	memcpy(slots.value[k], plain[i].data, PROTO_KEY);
    }
    /* Every user key and base key still missing comes from the HSM. */
    for (i = 1; i < N_KEY_SLOTS; i++) {
	if (!slots.have[i]) {
	    if (HsmRandom(u->hsm, slots.value[i], PROTO_KEY, err) != 0) {
		SetWhy(why, ROLE_FAIL_HSM);
		goto done;
	    }
	    slots.have[i] = 1;
	}
    }
    for (i = 0; i < N_KEY_SLOTS; i++) {
	if (slots.have[i]) {
	    names[n] = (char *) jm_key_names[i];
	    keys[n].name = (char *) jm_key_names[i];
	    keys[n].data = slots.value[i];
	    keys[n].len = PROTO_KEY;
	    n++;
	}
    }
    if (HsmRandom(u->hsm, ks.id, JM_KEYSET_ID, err) != 0
	    || HsmRandom(u->hsm, tk, sizeof(tk), err) != 0) {
	SetWhy(why, ROLE_FAIL_HSM);
	goto done;
    }
    snprintf(ks.uhsmUuid, sizeof(ks.uhsmUuid), "%s", u->uuid);
    snprintf(ks.masterUuid, sizeof(ks.masterUuid), "%s", u->masterUuid);
    ks.created = (uint64_t) time(NULL);
    ks.origin = (char *) (origin ? origin : "");
    ks.nNames = n;
    ks.names = names;
    if (jm_keyset_header(&ks, &aad) != 0 || jm_keys_encode(keys, n, &rec) != 0) {
	Fail(err, "out of memory");
	SetWhy(why, ROLE_FAIL_HSM);
	goto done;
    }
    if (role_wrap(&master, aad.data, aad.len, tk, sizeof(tk),
	    &ks.wrappedTicketKey, &ks.wrappedLen, err) != 0) {
	SetWhy(why, ROLE_FAIL_HSM);
	goto done;
    }
    if (proto_hkdf(tk, sizeof(tk), ks.id, JM_KEYSET_ID, "spps keyset v1", kk,
	    sizeof(kk)) != 0
	    || proto_gcm_encrypt(kk, aad.data, aad.len, rec.data, rec.len,
		    &ks.sealedKeys, &ks.sealedLen, err) != 0) {
	if (err->msg[0] == '\0') {
	    Fail(err, "keyset key derivation failed");
	}
	SetWhy(why, ROLE_FAIL_HSM);
	goto done;
    }
    if (jm_keyset_write(&ks, image, len, err) != 0) {
	SetWhy(why, ROLE_FAIL_HSM);
	goto done;
    }
    rc = 0;

  done:
    SlotsClear(&slots);
    OPENSSL_cleanse(tk, sizeof(tk));
    OPENSSL_cleanse(kk, sizeof(kk));
    proto_buf_free(&aad);
    proto_buf_free(&rec);
    free(ks.wrappedTicketKey);
    free(ks.sealedKeys);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Request and reply                                                    */
/* ------------------------------------------------------------------ */

int
role_uhsm_request(RoleUhsm *u, ProtoRequest *req, uint8_t **image,
	size_t *len, uint8_t digest[PROTO_DIGEST], ProtoError *err)
{
    RoleKey identity = IdentityKey(u);
    int rc;

    *image = NULL;
    snprintf(req->uhsmUuid, sizeof(req->uhsmUuid), "%s", u->uuid);
    req->created = (uint64_t) time(NULL);
    req->uhsmCert = u->cert;
    if (HsmRandom(u->hsm, req->nonce, PROTO_NONCE, err) != 0) {
	return -1;
    }
    rc = proto_request_write(req, role_sign, &identity, image, len, err);
    if (rc == 0 && proto_sha384(*image, *len, digest) != 0) {
	free(*image);
	*image = NULL;
	Fail(err, "job request: digest failed");
	rc = -1;
    }
    return rc;
}

/*
 * role_uhsm_reply_check --
 *	Validates a job reply (role_uhsm.h): envelope, signature by the
 *	certificate inside, the certificate against the pinned root, the
 *	expected M-HSM, the request answered, the tickets.
 */
int
role_uhsm_reply_check(RoleUhsm *u, const uint8_t *image, size_t len,
	const char *what, const uint8_t requestDigest[PROTO_DIGEST],
	const char *expectedMhsm, const char *jobName, const char *taskName,
	char *const *ticketNames, size_t nTickets, ProtoReply *reply,
	RoleFail *why, ProtoError *err)
{
    ProtoContainer c;
    size_t i;

    memset(reply, 0, sizeof(*reply));
    SetWhy(why, ROLE_FAIL_NONE);
    if (proto_container_read(image, len, PROTO_FILE_REPLY, NULL, MAX_REPLY,
	    what, &c, err) != 0) {
	SetWhy(why, ROLE_FAIL_CORRUPT);
	return -1;
    }
    if (c.auth != PROTO_AUTH_SIGNATURE) {
	Fail(err, "%s is not signed", what);
	SetWhy(why, ROLE_FAIL_AUTH);
	goto fail;
    }
    /* Signature (by the certificate inside) and content. */
    if (proto_reply_read(image, len, what, NULL, reply, err) != 0) {
	ProtoError inner = *err;

	Fail(err, "%s is damaged or was altered: %s", what, inner.msg);
	SetWhy(why, ROLE_FAIL_AUTH);
	goto fail;
    }
    /* The signer must be an M-HSM certified by the root we pinned. */
    if (proto_cert_verify(&reply->mhsmCert, PROTO_CERT_MHSM, u->root,
	    err) != 0) {
	ProtoError inner = *err;

	Fail(err, "%s: its M-HSM certificate is not one of the vendor root "
		"this U-HSM trusts: %s", what, inner.msg);
	SetWhy(why, ROLE_FAIL_CERT);
	goto fail;
    }
    if (strcmp(reply->mhsmUuid, reply->mhsmCert.subject) != 0
	    || strcmp(reply->mhsmCert.subject, expectedMhsm) != 0) {
	Fail(err, "%s comes from M-HSM %s, but "
		"the request was made for M-HSM %s", what,
		reply->mhsmCert.subject, expectedMhsm);
	SetWhy(why, ROLE_FAIL_MHSM);
	goto fail;
    }
    if (CRYPTO_memcmp(reply->requestDigest, requestDigest, PROTO_DIGEST) != 0
	    || strcmp(reply->jobName, jobName) != 0
	    || strcmp(reply->taskName, taskName) != 0) {
	char hex[2 * PROTO_DIGEST + 1];

	proto_hex(reply->requestDigest, 8, hex);
	Fail(err, "%s answers another request "
		"(job '%.100s', task '%.100s', request %s...), not the last "
		"request of task '%.100s' of job '%.100s'", what,
		reply->jobName, reply->taskName, hex, taskName, jobName);
	SetWhy(why, ROLE_FAIL_REQUEST);
	goto fail;
    }
    if (reply->nTickets != nTickets) {
	Fail(err, "%s has %lu tickets; the task "
		"has %lu", what, (unsigned long) reply->nTickets,
		(unsigned long) nTickets);
	SetWhy(why, ROLE_FAIL_MISMATCH);
	goto fail;
    }
    for (i = 0; i < nTickets; i++) {
	if (strcmp(reply->tickets[i].name, ticketNames[i]) != 0) {
	    Fail(err, "%s: ticket %lu is '%.100s'; "
		    "the task's is '%.100s'", what, (unsigned long) (i + 1),
		    reply->tickets[i].name, ticketNames[i]);
	    SetWhy(why, ROLE_FAIL_MISMATCH);
	    goto fail;
	}
    }
    proto_container_free(&c);
    return 0;

  fail:
    proto_container_free(&c);
    proto_reply_free(reply);
    memset(reply, 0, sizeof(*reply));
    return -1;
}

/* ------------------------------------------------------------------ */
/* Job export                                                           */
/* ------------------------------------------------------------------ */

int
role_uhsm_kip_aad(const uint8_t requestDigest[PROTO_DIGEST],
	const char *bitstreamName, ProtoBuf *out)
{
    proto_put_str(out, 1, "spps kip v1");
    proto_put_bytes(out, 2, requestDigest, PROTO_DIGEST);
    proto_put_str(out, 3, bitstreamName);
    return out->failed ? -1 : 0;
}

/* The clear secrets of one bitstream during an export. */
typedef struct ExportSecret {
    uint8_t kip[PROTO_KEY];
    size_t nBase;
    ProtoNamedBytes base[6];
    uint8_t baseValue[6][PROTO_KEY];
} ExportSecret;

/* Removes the keys the role put in a body (cleansed). */
static void
BodyDropKeys(ProtoBitstreamBody *body, size_t keepKeys, size_t keepPer)
{
    size_t i;

    if (body->keys != NULL) {
	for (i = keepKeys; i < body->nKeys; i++) {
	    free(body->keys[i].name);
	    if (body->keys[i].data != NULL) {
		OPENSSL_clear_free(body->keys[i].data, body->keys[i].len);
	    }
	}
	body->nKeys = keepKeys;
	if (keepKeys == 0) {
	    free(body->keys);
	    body->keys = NULL;
	}
    }
    if (body->perDevice != NULL) {
	for (i = keepPer; i < body->nPerDevice; i++) {
	    free(body->perDevice[i]);
	}
	body->nPerDevice = keepPer;
	if (keepPer == 0) {
	    free(body->perDevice);
	    body->perDevice = NULL;
	}
    }
}

/*
 * PrepareBitstream --
 *	Fills the keys of one bitstream's body, chooses its KIP (the earlier
 *	export's, else the keyset's, else a fresh one), encrypts it, and
 *	wraps the KIP for the project.
 */
static int
PrepareBitstream(RoleUhsm *u, const ProtoJob *job, ProtoBitstream *hdr,
	RoleExportBitstream *in, ExportSecret *sec, RoleFail *why,
	ProtoError *err)
{
    KeySlots slots;
    JmKeyset ksHdr;
    ProtoBuf body, kipAad;
    RoleKey master = MasterKey(u);
    size_t i, keepKeys = in->body.nKeys, keepPer = in->body.nPerDevice;
    int rc = -1, haveKeyset = 0;

    memset(&slots, 0, sizeof(slots));
    proto_buf_init(&body);
    proto_buf_init(&kipAad);
    if (keepKeys != 0 || keepPer != 0) {
	Fail(err, "bitstream '%s': the caller may "
		"not put keys in a body", hdr->name);
	SetWhy(why, ROLE_FAIL_MISMATCH);
	return -1;
    }
    if (role_uhsm_kip_aad(job->requestDigest, hdr->name, &kipAad) != 0) {
	Fail(err, "out of memory");
	SetWhy(why, ROLE_FAIL_HSM);
	goto done;
    }
    if (in->keyset != NULL) {
	if (KeysetOpen(u, in->keyset, in->keysetLen, in->keysetWhat, &ksHdr,
		&slots, why, err) != 0) {
	    goto done;
	}
	jm_keyset_free(&ksHdr);
	haveKeyset = 1;
    }
    if ((in->programKeys || in->nPerDevice > 0) && !haveKeyset) {
	Fail(err, "bitstream '%s' programs keys "
		"but its programming data has no keyset", hdr->name);
	SetWhy(why, ROLE_FAIL_MISMATCH);
	goto done;
    }
    /* Per-device keys: the base keys go to the M-HSM, not the body. */
    for (i = 0; i < in->nPerDevice; i++) {
	int k = jm_key_index(in->perDevice[i]);

	if (k < 1 || k > 6 || !slots.have[k + 6]) {
	    Fail(err, "bitstream '%s': per-device "
		    "key '%s' needs the base key %s_BASE in the keyset",
		    hdr->name, in->perDevice[i],
		    k >= 1 && k <= 6 ? jm_key_names[k] : in->perDevice[i]);
	    SetWhy(why, ROLE_FAIL_MISMATCH);
	    goto done;
	}
	sec->base[sec->nBase].name = (char *) jm_key_names[k];
	memcpy(sec->baseValue[sec->nBase], slots.value[k + 6], PROTO_KEY);
	sec->base[sec->nBase].data = sec->baseValue[sec->nBase];
	sec->base[sec->nBase].len = PROTO_KEY;
	sec->nBase++;
    }
    if (in->nPerDevice > 0) {
	in->body.perDevice = calloc(in->nPerDevice, sizeof(char *));
	if (in->body.perDevice == NULL) {
	    goto nomem;
	}
	for (i = 0; i < in->nPerDevice; i++) {
	    int k = jm_key_index(in->perDevice[i]);

	    if ((in->body.perDevice[i] = jm_strdup(jm_key_names[k])) == NULL) {
		goto nomem;
	    }
	    in->body.nPerDevice = i + 1;
	}
    }
    /* Project keys: every user key of the keyset not derived per device. */
    if (in->programKeys) {
	in->body.keys = calloc(6, sizeof(ProtoNamedBytes));
	if (in->body.keys == NULL) {
	    goto nomem;
	}
	for (i = 1; i <= 6; i++) {
	    size_t j;
	    int perDevice = 0;
	    ProtoNamedBytes *kb;

	    for (j = 0; j < sec->nBase; j++) {
		if (strcmp(sec->base[j].name, jm_key_names[i]) == 0) {
		    perDevice = 1;
		}
	    }
	    if (perDevice || !slots.have[i]) {
		continue;
	    }
	    kb = &in->body.keys[in->body.nKeys];
	    if ((kb->name = jm_strdup(jm_key_names[i])) == NULL
		    || (kb->data = OPENSSL_malloc(PROTO_KEY)) == NULL) {
		free(kb->name);
		kb->name = NULL;
		goto nomem;
	    }
	    memcpy(kb->data, slots.value[i], PROTO_KEY);
	    kb->len = PROTO_KEY;
	    in->body.nKeys++;
	}
    }
    /* The bitstream key. */
    if (in->wrappedKip != NULL) {
	uint8_t *kip = NULL;
	size_t kipLen = 0;

	if (role_unwrap(&master, kipAad.data, kipAad.len, in->wrappedKip,
		in->wrappedKipLen, &kip, &kipLen, err) != 0
		|| kipLen != PROTO_KEY) {
	    if (kip != NULL) {
		OPENSSL_clear_free(kip, kipLen);
	    }
	    Fail(err, "bitstream '%s': the key of "
		    "its first export does not unwrap: the project was "
		    "altered", hdr->name);
	    SetWhy(why, ROLE_FAIL_AUTH);
	    goto done;
	}
	memcpy(sec->kip, kip, PROTO_KEY);
	OPENSSL_clear_free(kip, kipLen);
    } else if (slots.have[0]) {
	memcpy(sec->kip, slots.value[0], PROTO_KEY);
    } else if (HsmRandom(u->hsm, sec->kip, PROTO_KEY, err) != 0) {
	SetWhy(why, ROLE_FAIL_HSM);
	goto done;
    }
    if (proto_bitstream_body_encode(&in->body, &body) != 0) {
	goto nomem;
    }
    if (proto_sha384(body.data, body.len, hdr->designDigest) != 0) {
	Fail(err, "digest failed");
	SetWhy(why, ROLE_FAIL_HSM);
	goto done;
    }
    if (in->expectDigest != NULL
	    && memcmp(in->expectDigest, hdr->designDigest, PROTO_DIGEST) != 0) {
	Fail(err, "bitstream '%s' is no longer "
		"what this task exported first (its design, eNVM or sNVM "
		"content, security settings or keys changed): the M-HSM holds "
		"tickets for the first one; export a new HSM task instead",
		hdr->name);
	SetWhy(why, ROLE_FAIL_MISMATCH);
	goto done;
    }
    free(hdr->cipher);
    hdr->cipher = NULL;
    if (proto_gcm_encrypt(sec->kip, NULL, 0, body.data, body.len, &hdr->cipher,
	    &hdr->cipherLen, err) != 0
	    || role_wrap(&master, kipAad.data, kipAad.len, sec->kip, PROTO_KEY,
		    &in->newWrappedKip, &in->newWrappedKipLen, err) != 0) {
	SetWhy(why, ROLE_FAIL_HSM);
	goto done;
    }
    rc = 0;
    goto done;

  nomem:
    Fail(err, "out of memory");
    SetWhy(why, ROLE_FAIL_HSM);

  done:
    BodyDropKeys(&in->body, keepKeys, keepPer);
    SlotsClear(&slots);
    proto_buf_free(&body);
    proto_buf_free(&kipAad);
    return rc;
}

/*
 * role_uhsm_export --
 *	Makes the signed job (role_uhsm.h): bitstreams, ticket secrets
 *	sealed to the bound M-HSM, signature; secrets cleansed.
 */
int
role_uhsm_export(RoleUhsm *u, ProtoJob *job, const ProtoCert *mhsmCert,
	RoleExportBitstream *bs, const size_t *ticketBitstream,
	uint8_t **image, size_t *len, RoleFail *why, ProtoError *err)
{
    ExportSecret *sec = NULL;
    ProtoTicketSecret *secrets = NULL;
    ProtoBuf pt, aad, body;
    RoleKey identity = IdentityKey(u);
    size_t i;
    int rc = -1;

    *image = NULL;
    SetWhy(why, ROLE_FAIL_NONE);
    proto_buf_init(&pt);
    proto_buf_init(&aad);
    proto_buf_init(&body);
    for (i = 0; i < job->nBitstreams; i++) {
	bs[i].newWrappedKip = NULL;
	bs[i].newWrappedKipLen = 0;
    }
    /* The binding must still hold: a certified M-HSM with a sealing key. */
    if (proto_cert_verify(mhsmCert, PROTO_CERT_MHSM, u->root, err) != 0
	    || !mhsmCert->hasEncKey
	    || strcmp(mhsmCert->subject, job->mhsmUuid) != 0) {
	Fail(err, "the M-HSM certificate bound to "
		"task '%s' does not verify against the vendor root", job->taskName);
	SetWhy(why, ROLE_FAIL_CERT);
	return -1;
    }
    if ((sec = OPENSSL_zalloc(sizeof(*sec) * (job->nBitstreams + 1))) == NULL
	    || (secrets = calloc(job->nTickets + 1, sizeof(*secrets))) == NULL) {
	Fail(err, "out of memory");
	SetWhy(why, ROLE_FAIL_HSM);
	goto done;
    }
    for (i = 0; i < job->nBitstreams; i++) {
	if (PrepareBitstream(u, job, &job->bitstreams[i], &bs[i], &sec[i], why,
		err) != 0) {
	    goto done;
	}
    }
    for (i = 0; i < job->nTickets; i++) {
	size_t b = ticketBitstream[i];
	ProtoTicketSecret *s = &secrets[i];

	if (b >= job->nBitstreams) {
	    Fail(err, "ticket %lu has no bitstream",
		    (unsigned long) (i + 1));
	    SetWhy(why, ROLE_FAIL_MISMATCH);
	    goto done;
	}
	memcpy(s->id, job->tickets[i].id, PROTO_TICKET_ID);
	s->action = job->tickets[i].action;
	s->maxDevices = job->tickets[i].maxDevices;
	memcpy(s->kip, sec[b].kip, PROTO_KEY);
	s->keyMode = job->bitstreams[b].keyMode;
	memcpy(s->designDigest, job->bitstreams[b].designDigest, PROTO_DIGEST);
	s->generateCoc = job->bitstreams[b].generateCoc;
	s->nBaseKeys = sec[b].nBase;
	s->baseKeys = sec[b].base;
    }
    snprintf(job->uhsmUuid, sizeof(job->uhsmUuid), "%s", u->uuid);
    job->uhsmCert = u->cert;
    job->created = (uint64_t) time(NULL);
    if (proto_cert_fingerprint(mhsmCert, job->mhsmCertFingerprint) != 0
	    || proto_ticket_secrets_encode(secrets, job->nTickets, &pt) != 0
	    || proto_job_binding(job, &aad) != 0) {
	Fail(err, "job: cannot encode the ticket "
		"secrets");
	SetWhy(why, ROLE_FAIL_HSM);
	goto done;
    }
    free(job->sealedSecrets);
    job->sealedSecrets = NULL;
    if (proto_seal_p384(mhsmCert->encKey, "tickets", aad.data, aad.len,
	    pt.data, pt.len, &job->sealedSecrets, &job->sealedLen, err) != 0) {
	SetWhy(why, ROLE_FAIL_HSM);
	goto done;
    }
    if (proto_job_write(job, role_sign, &identity, image, len, err) != 0) {
	SetWhy(why, ROLE_FAIL_HSM);
	goto done;
    }
    rc = 0;

  done:
    if (secrets != NULL) {
	OPENSSL_cleanse(secrets, sizeof(*secrets) * (job->nTickets + 1));
	free(secrets);
    }
    if (sec != NULL) {
	OPENSSL_clear_free(sec, sizeof(*sec) * (job->nBitstreams + 1));
    }
    proto_buf_free(&pt);
    proto_buf_free(&aad);
    proto_buf_free(&body);
    if (rc != 0) {
	for (i = 0; i < job->nBitstreams; i++) {
	    free(bs[i].newWrappedKip);
	    bs[i].newWrappedKip = NULL;
	    bs[i].newWrappedKipLen = 0;
	}
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Status validation                                                    */
/* ------------------------------------------------------------------ */

int
role_uhsm_status_peek(const uint8_t *image, size_t len, const char *what,
	uint8_t requestDigest[PROTO_DIGEST], char **jobName, char **taskName,
	ProtoError *err)
{
    ProtoContainer c;
    ProtoStatus st;

    *jobName = *taskName = NULL;
    if (proto_container_read(image, len, PROTO_FILE_STATUS, NULL, MAX_STATUS,
	    what, &c, err) != 0) {
	return -1;
    }
    if (proto_status_decode(c.body, c.bodyLen, &st, err) != 0) {
	ProtoError inner = *err;

	Fail(err, "%s: %s", what, inner.msg);
	proto_container_free(&c);
	return -1;
    }
    memcpy(requestDigest, st.requestDigest, PROTO_DIGEST);
    *jobName = jm_strdup(st.jobName);
    *taskName = jm_strdup(st.taskName);
    proto_status_free(&st);
    proto_container_free(&c);
    if (*jobName == NULL || *taskName == NULL) {
	free(*jobName);
	free(*taskName);
	*jobName = *taskName = NULL;
	Fail(err, "out of memory");
	return -1;
    }
    return 0;
}

/*
 * Invalid --
 *	Marks a verdict invalid with its first reason.
 */
static void
Invalid(RoleVerdict *v, const char *fmt, const char *a, const char *b)
{
    if (v->valid) {
	v->valid = 0;
	snprintf(v->why, sizeof(v->why), fmt, a, b);
    }
}

/*
 * FindTicket --
 *	The task ticket with that id, or NULL.
 */
static const RoleStatusTicket *
FindTicket(const RoleStatusTicket *t, size_t n, const uint8_t *id)
{
    size_t i;

    for (i = 0; i < n; i++) {
	if (memcmp(t[i].id, id, PROTO_TICKET_ID) == 0) {
	    return &t[i];
	}
    }
    return NULL;
}

/*
 * role_uhsm_status_check --
 *	Validates a status file (role_uhsm.h): signature with the bound
 *	M-HSM key, the task, then a verdict per ticket, CoC and certifier.
 */
int
role_uhsm_status_check(RoleUhsm *u, const uint8_t *image, size_t len,
	const char *what, const ProtoCert *mhsmCert,
	const uint8_t requestDigest[PROTO_DIGEST], const char *jobName,
	const char *taskName, const RoleStatusTicket *tickets, size_t nTickets,
	const RoleStatusBitstream *bitstreams, size_t nBitstreams,
	RoleStatusResult *res, RoleFail *why, ProtoError *err)
{
    ProtoContainer c;
    ProtoStatus *st = &res->status;
    RoleKey master = MasterKey(u);
    uint8_t (*kips)[PROTO_KEY] = NULL;
    int *kipState = NULL;	/* 0 not tried, 1 ok, -1 failed */
    size_t *cocCount = NULL, *certCount = NULL;
    size_t i, j;
    int rc = -1;

    memset(res, 0, sizeof(*res));
    SetWhy(why, ROLE_FAIL_NONE);
    if (proto_container_read(image, len, PROTO_FILE_STATUS, NULL, MAX_STATUS,
	    what, &c, err) != 0) {
	SetWhy(why, ROLE_FAIL_CORRUPT);
	return -1;
    }
    proto_container_free(&c);
    /* The signature, with the key bound by the reply, then the content. */
    if (proto_status_read(image, len, what, mhsmCert->signKey, st, err) != 0) {
	ProtoError inner = *err;

	Fail(err, "%s does not verify with the key of M-HSM %s bound to task "
		"'%s': the file was altered, or it comes from another M-HSM "
		"(%s)", what, mhsmCert->subject, taskName, inner.msg);
	SetWhy(why, ROLE_FAIL_AUTH);
	memset(st, 0, sizeof(*st));
	return -1;
    }
    if (CRYPTO_memcmp(st->requestDigest, requestDigest, PROTO_DIGEST) != 0
	    || strcmp(st->jobName, jobName) != 0
	    || strcmp(st->taskName, taskName) != 0
	    || strcmp(st->mhsmUuid, mhsmCert->subject) != 0) {
	Fail(err, "%s is for job '%.100s', task "
		"'%.100s' on M-HSM %s: not for task '%.100s' of job '%.100s'",
		what, st->jobName, st->taskName, st->mhsmUuid, taskName,
		jobName);
	SetWhy(why, ROLE_FAIL_REQUEST);
	goto fail;
    }
    res->coc = calloc(st->nCocs + 1, sizeof(RoleVerdict));
    res->certifier = calloc(st->nCertifiers + 1, sizeof(RoleVerdict));
    res->ticket = calloc(st->nTickets + 1, sizeof(RoleVerdict));
    kips = OPENSSL_zalloc(sizeof(*kips) * (nBitstreams + 1));
    kipState = calloc(nBitstreams + 1, sizeof(int));
    cocCount = calloc(nTickets + 1, sizeof(size_t));
    certCount = calloc(nTickets + 1, sizeof(size_t));
    if (res->coc == NULL || res->certifier == NULL || res->ticket == NULL
	    || kips == NULL || kipState == NULL || cocCount == NULL
	    || certCount == NULL) {
	Fail(err, "out of memory");
	SetWhy(why, ROLE_FAIL_HSM);
	goto fail;
    }
    res->allValid = 1;

    /* Tickets: each one of the task, as the task defines it. */
    for (i = 0; i < st->nTickets; i++) {
	const ProtoTicketStatus *ts = &st->tickets[i];
	const RoleStatusTicket *t = FindTicket(tickets, nTickets, ts->id);
	RoleVerdict *v = &res->ticket[i];

	v->valid = 1;
	if (t == NULL) {
	    Invalid(v, "ticket '%s' is not a ticket of this task%s", ts->name, "");
	} else if (strcmp(t->name, ts->name) != 0
		|| strcmp(t->action, ts->action) != 0
		|| t->maxDevices != ts->maxDevices) {
	    Invalid(v, "ticket '%s' does not match the task's ticket '%s'",
		    ts->name, t->name);
	} else if (ts->completed < 0 || ts->pending < 0
		|| (ts->maxDevices != PROTO_UNLIMITED
		    && ts->completed + ts->pending > ts->maxDevices)) {
	    Invalid(v, "ticket '%s' reports more devices than it allows%s",
		    ts->name, "");
	}
	for (j = 0; j < i; j++) {
	    if (memcmp(st->tickets[j].id, ts->id, PROTO_TICKET_ID) == 0) {
		Invalid(v, "ticket '%s' is listed twice%s", ts->name, "");
	    }
	}
	if (!v->valid) {
	    res->allValid = 0;
	}
    }

    /* CoCs: MAC under the KIP of the ticket's bitstream, design, action. */
    for (i = 0; i < st->nCocs; i++) {
	const ProtoCoc *coc = &st->cocs[i];
	const RoleStatusTicket *t = FindTicket(tickets, nTickets, coc->ticketId);
	RoleVerdict *v = &res->coc[i];
	uint8_t mac[PROTO_MAC];
	size_t b;

	v->valid = 1;
	if (t == NULL) {
	    Invalid(v, "its ticket is not a ticket of this task%s%s", "", "");
	    goto nextCoc;
	}
	cocCount[t - tickets]++;
	b = t->bitstream;
	if (b >= nBitstreams) {
	    Invalid(v, "ticket '%s' has no exported bitstream%s", t->name, "");
	    goto nextCoc;
	}
	if (kipState[b] == 0) {
	    ProtoBuf aad;
	    uint8_t *kip = NULL;
	    size_t kipLen = 0;
	    ProtoError e2;

	    proto_buf_init(&aad);
	    kipState[b] = -1;
	    if (role_uhsm_kip_aad(requestDigest, bitstreams[b].name, &aad) == 0
		    && role_unwrap(&master, aad.data, aad.len,
			    bitstreams[b].wrappedKip, bitstreams[b].wrappedKipLen,
			    &kip, &kipLen, &e2) == 0 && kipLen == PROTO_KEY) {
		memcpy(kips[b], kip, PROTO_KEY);
		kipState[b] = 1;
	    }
	    if (kip != NULL) {
		OPENSSL_clear_free(kip, kipLen);
	    }
	    proto_buf_free(&aad);
	}
	if (kipState[b] != 1) {
	    Invalid(v, "the key of bitstream '%s' does not unwrap in this "
		    "U-HSM%s", bitstreams[b].name, "");
	    goto nextCoc;
	}
	if (proto_coc_mac(kips[b], coc, mac, NULL) != 0
		|| CRYPTO_memcmp(mac, coc->mac, PROTO_MAC) != 0) {
	    Invalid(v, "its MAC does not verify: it was not made by a device "
		    "programmed with bitstream '%s'%s", bitstreams[b].name, "");
	} else if (memcmp(coc->designDigest, bitstreams[b].designDigest,
		PROTO_DIGEST) != 0) {
	    Invalid(v, "it is for another design than bitstream '%s'%s",
		    bitstreams[b].name, "");
	} else if (strcmp(coc->action, t->action) != 0) {
	    Invalid(v, "its action %s is not the action of ticket '%s'",
		    coc->action, t->name);
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	/*
	 * Each authorization code is issued once and gives one CoC: a code
	 * id seen twice is a copied CoC.  (One device may appear twice under
	 * a ticket: programmed again, it used a second code.)
	 */
	for (j = 0; j < i; j++) {
	    if (memcmp(st->cocs[j].codeId, coc->codeId, PROTO_CODE_ID) == 0) {
		if (v->valid) {
		    v->valid = 0;
		    snprintf(v->why, sizeof(v->why), "it repeats CoC %lu (the "
			    "same authorization code)", (unsigned long) (j + 1));
		}
	    }
	}
      nextCoc:
	if (!v->valid) {
	    res->allValid = 0;
	}
    }

    /* End certifiers: the M-HSM's signature and every field. */
    for (i = 0; i < st->nCertifiers; i++) {
	const ProtoCertifier *ce = &st->certifiers[i];
	const RoleStatusTicket *t = FindTicket(tickets, nTickets, ce->ticketId);
	RoleVerdict *v = &res->certifier[i];
	ProtoBuf tbs;
	ProtoError e2;

	v->valid = 1;
	proto_buf_init(&tbs);
	if (proto_certifier_tbs(ce, &tbs) != 0
		|| proto_verify_p384(mhsmCert->signKey, tbs.data, tbs.len,
			ce->signature, &e2) != 0) {
	    Invalid(v, "its signature does not verify with the key of M-HSM %s%s",
		    mhsmCert->subject, "");
	} else if (t == NULL) {
	    Invalid(v, "ticket '%s' is not a ticket of this task%s",
		    ce->ticketName, "");
	} else if (strcmp(ce->ticketName, t->name) != 0
		|| strcmp(ce->action, t->action) != 0
		|| ce->maxDevices != t->maxDevices) {
	    Invalid(v, "it does not match the task's ticket '%s'%s", t->name, "");
	} else if (CRYPTO_memcmp(ce->requestDigest, requestDigest,
		PROTO_DIGEST) != 0 || strcmp(ce->mhsmUuid, mhsmCert->subject) != 0) {
	    Invalid(v, "it certifies a ticket of another request or M-HSM%s%s",
		    "", "");
	} else if (ce->completed < 0 || ce->pending < 0
		|| (ce->maxDevices != PROTO_UNLIMITED
		    && ce->completed + ce->pending > ce->maxDevices)) {
	    Invalid(v, "it reports more devices than ticket '%s' allows%s",
		    t->name, "");
	} else if (strcmp(ce->endType, "COMPLETED") != 0
		&& strcmp(ce->endType, "TERMINATED") != 0) {
	    Invalid(v, "its end type '%s' is unknown%s", ce->endType, "");
	}
	proto_buf_free(&tbs);
	if (t != NULL) {
	    size_t k = (size_t) (t - tickets);

	    if (++certCount[k] > 1) {
		Invalid(v, "ticket '%s' has more than one end certifier%s",
			t->name, "");
	    } else if (v->valid && st->isEnd
		    && (uint64_t) ce->completed != (uint64_t) cocCount[k]) {
		char a[32], b2[32];

		snprintf(a, sizeof(a), "%lld", (long long) ce->completed);
		snprintf(b2, sizeof(b2), "%lu", (unsigned long) cocCount[k]);
		Invalid(v, "it certifies %s completed devices, but the status "
			"carries %s CoCs for the ticket", a, b2);
	    }
	}
	if (!v->valid) {
	    res->allValid = 0;
	}
    }

    /* An end status certifies the removal of every ticket of the task. */
    if (st->isEnd) {
	for (i = 0; i < nTickets; i++) {
	    if (certCount[i] == 0) {
		char **m = realloc(res->missing,
			(res->nMissing + 1) * sizeof(char *));

		if (m == NULL) {
		    Fail(err, "out of memory");
		    SetWhy(why, ROLE_FAIL_HSM);
		    goto fail;
		}
		res->missing = m;
		if ((m[res->nMissing] = jm_strdup(tickets[i].name)) == NULL) {
		    Fail(err, "out of memory");
		    SetWhy(why, ROLE_FAIL_HSM);
		    goto fail;
		}
		res->nMissing++;
		res->allValid = 0;
	    }
	}
    }
    rc = 0;
    goto done;

  fail:
    role_uhsm_status_result_free(res);

  done:
    if (kips != NULL) {
	OPENSSL_clear_free(kips, sizeof(*kips) * (nBitstreams + 1));
    }
    free(kipState);
    free(cocCount);
    free(certCount);
    return rc;
}

/*
 * role_uhsm_status_result_free --
 *	Frees a status result.
 */
void
role_uhsm_status_result_free(RoleStatusResult *res)
{
    size_t i;

    proto_status_free(&res->status);
    free(res->coc);
    free(res->certifier);
    free(res->ticket);
    for (i = 0; res->missing != NULL && i < res->nMissing; i++) {
	free(res->missing[i]);
    }
    free(res->missing);
    memset(res, 0, sizeof(*res));
}
