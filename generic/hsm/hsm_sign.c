/*
 * hsm_sign.c --
 *
 *	ECDSA signature generation (on a key store service) and verification
 *	(on a session), prepared ("low latency") signatures, and public keys
 *	imported into a verification service.
 *
 *	Signatures cross the API as r || s || Ry: r and s big-endian, each the
 *	coordinate size of the curve, and one byte Ry, the least significant
 *	bit of the y coordinate of the nonce point R = k * G.  OpenSSL signs
 *	(the nonce never leaves it), so Ry is found afterwards: R is
 *	recomputed from the signature as u1 * G + u2 * Q with u1 = e / s and
 *	u2 = r / s (the verification equation), which yields exactly the
 *	point k * G of a valid signature.  Point arithmetic uses EC_POINT/BN,
 *	on public values only.
 *
 *	docs/ENGINE.md, "Cryptographic services", says what each function
 *	accepts and refuses.
 */

#include "hsm_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#define MAX_COORD	48		/* P-384 and the 384-bit brainpool curves */
#define MAX_DIGEST	64

/* Prepared signatures a generation service holds at most. */
#define PREPARED_MAX	16

/* Public keys a verification service holds at most. */
#define IMPORTED_MAX	1024

/* The status a failed verification reports (anything but SUCCESS). */
#define VERIFICATION_FAILED ((hsm_verification_status_t) 0)

/* ------------------------------------------------------------------ */
/* Curves                                                               */
/* ------------------------------------------------------------------ */

static PlatMutex groupMutex = PLAT_MUTEX_INITIALIZER;
static EC_GROUP *groupCache[16];

/*
 *----------------------------------------------------------------------
 *
 * GroupIndex, CurveGroup --
 *	The EC_GROUP of a key type's curve, made once per process and
 *	shared (read-only) by every operation.  NULL if OpenSSL lacks it.
 *
 *----------------------------------------------------------------------
 */

static int
GroupIndex(hsm_key_type_t type)
{
    switch (type) {
    case HSM_KEY_TYPE_ECDSA_NIST_P256: return 0;
    case HSM_KEY_TYPE_ECDSA_NIST_P384: return 1;
    case HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256: return 2;
    case HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_384: return 3;
    case HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_384: return 4;
    default: return -1;
    }
}

static const EC_GROUP *
CurveGroup(const HsmKeyTypeInfo *info)
{
    int i = GroupIndex(info->type);
    EC_GROUP *group;

    if (i < 0) {
	return NULL;
    }
    plat_mutex_lock(&groupMutex);
    if ((group = groupCache[i]) == NULL) {
	int nid = EC_curve_nist2nid(info->group);

	if (nid == NID_undef) {
	    nid = OBJ_sn2nid(info->group);
	}
	group = groupCache[i] = EC_GROUP_new_by_curve_name(nid);
    }
    plat_mutex_unlock(&groupMutex);
    return group;
}

/*
 *----------------------------------------------------------------------
 *
 * SchemeInfo --
 *	The key type entry of a signature scheme.  Schemes the seed marks
 *	"not supported" are HSM_FEATURE_NOT_SUPPORTED, unknown ones
 *	HSM_INVALID_PARAM.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
SchemeInfo(const char *fn, hsm_signature_scheme_id_t scheme,
	const HsmKeyTypeInfo **info)
{
    hsm_key_type_t type = hsm_scheme_key_type(scheme);

    *info = type ? hsm_key_type_info(type) : NULL;
    if (*info == NULL) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: scheme_id 0x%02x is not a "
		"signature scheme", fn, scheme);
    }
    if (!(*info)->supported) {
	return hsm_fail(HSM_FEATURE_NOT_SUPPORTED, "%s: scheme_id 0x%02x "
		"(ECDSA %s) is not supported", fn, scheme, (*info)->name + 6);
    }
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * Digest --
 *	The digest of the input of a signature operation: the input itself
 *	with INPUT_DIGEST (whose size must be the digest size of the
 *	scheme), else its hash with the scheme's digest, made with the
 *	service's reusable context.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
Digest(const char *fn, EVP_MD_CTX *mdctx, const HsmKeyTypeInfo *info,
	int isMessage, const uint8_t *msg, uint32_t msgLen,
	uint8_t dig[MAX_DIGEST], size_t *digLen)
{
    const EVP_MD *md = hsm_md(info->digest);
    unsigned int n = 0;

    if (md == NULL) {
	return hsm_fail(HSM_GENERAL_ERROR, "%s: OpenSSL has no %s", fn,
		info->digest);
    }
    *digLen = (size_t) EVP_MD_get_size(md);
    if (!isMessage) {
	if (msgLen != *digLen) {
	    return hsm_fail(HSM_INVALID_PARAM, "%s: message_size is %u, must "
		    "be %u (the %s digest; or set the INPUT_MESSAGE flag)", fn,
		    msgLen, (unsigned) *digLen, info->digest);
	}
	memcpy(dig, msg, *digLen);
	return HSM_NO_ERROR;
    }
    if (EVP_DigestInit_ex2(mdctx, md, NULL) != 1
	    || EVP_DigestUpdate(mdctx, msg, msgLen) != 1
	    || EVP_DigestFinal_ex(mdctx, dig, &n) != 1 || n != *digLen) {
	return hsm_fail_ossl("signature: hashing the message failed");
    }
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * NonceParity --
 *	The parity of the y coordinate of R = u1 * G + u2 * Q, u1 = e / s,
 *	u2 = r / s mod n, e the digest as an integer (truncated to the bit
 *	length of n): for a valid signature (r, s) of e under Q, R is the
 *	nonce point.  Sets *parity to 0 or 1 and *rMatches to whether the x
 *	coordinate of R reduces to r (that is, whether the signature is
 *	valid).  Returns 0, or -1 if the computation failed (bad input or no
 *	memory); the caller decides what that means.
 *
 *----------------------------------------------------------------------
 */

static int
NonceParity(const HsmKeyTypeInfo *info, const uint8_t *pubXy,
	const uint8_t *rs, const uint8_t *dig, size_t digLen, int *parity,
	int *rMatches)
{
    const EC_GROUP *group = CurveGroup(info);
    const BIGNUM *order;
    BN_CTX *bn = NULL;
    BIGNUM *r, *s, *e, *w, *u1, *u2, *x, *y;
    EC_POINT *q = NULL, *pt = NULL;
    uint8_t oct[1 + 2 * MAX_COORD];
    size_t size = info->size;
    int bits, ok = -1;

    if (group == NULL || (bn = BN_CTX_new()) == NULL) {
	return -1;
    }
    BN_CTX_start(bn);
    r = BN_CTX_get(bn);
    s = BN_CTX_get(bn);
    e = BN_CTX_get(bn);
    w = BN_CTX_get(bn);
    u1 = BN_CTX_get(bn);
    u2 = BN_CTX_get(bn);
    x = BN_CTX_get(bn);
    if ((y = BN_CTX_get(bn)) == NULL) {
	goto done;
    }
    order = EC_GROUP_get0_order(group);
    oct[0] = POINT_CONVERSION_UNCOMPRESSED;
    memcpy(oct + 1, pubXy, 2 * size);
    if (BN_bin2bn(rs, (int) size, r) == NULL
	    || BN_bin2bn(rs + size, (int) size, s) == NULL
	    || BN_is_zero(r) || BN_is_zero(s)
	    || BN_cmp(r, order) >= 0 || BN_cmp(s, order) >= 0
	    || BN_bin2bn(dig, (int) digLen, e) == NULL) {
	goto done;
    }
    bits = BN_num_bits(order);
    if ((int) digLen * 8 > bits && !BN_rshift(e, e, (int) digLen * 8 - bits)) {
	goto done;
    }
    if ((q = EC_POINT_new(group)) == NULL || (pt = EC_POINT_new(group)) == NULL
	    || !EC_POINT_oct2point(group, q, oct, 1 + 2 * size, bn)
	    || BN_mod_inverse(w, s, order, bn) == NULL
	    || !BN_mod_mul(u1, e, w, order, bn)
	    || !BN_mod_mul(u2, r, w, order, bn)
	    || !EC_POINT_mul(group, pt, u1, q, u2, bn)
	    || EC_POINT_is_at_infinity(group, pt)
	    || !EC_POINT_get_affine_coordinates(group, pt, x, y, bn)
	    || !BN_nnmod(x, x, order, bn)) {
	goto done;
    }
    *parity = BN_is_odd(y) ? 1 : 0;
    *rMatches = BN_cmp(x, r) == 0;
    ok = 0;

  done:
    EC_POINT_free(q);
    EC_POINT_free(pt);
    BN_CTX_end(bn);
    BN_CTX_free(bn);
    return ok;
}

/*
 *----------------------------------------------------------------------
 *
 * SigToDer, DerToSig --
 *	Between r || s (each size bytes) and the DER encoding EVP uses.
 *
 *----------------------------------------------------------------------
 */

static int
SigToDer(const uint8_t *rs, size_t size, uint8_t **der, size_t *derLen)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, (int) size, NULL);
    BIGNUM *s = BN_bin2bn(rs + size, (int) size, NULL);
    int len;

    *der = NULL;
    if (sig == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(sig, r, s)) {
	ECDSA_SIG_free(sig);
	BN_free(r);
	BN_free(s);
	return -1;
    }
    len = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);
    if (len <= 0) {
	return -1;
    }
    *derLen = (size_t) len;
    return 0;
}

static int
DerToSig(const uint8_t *der, size_t derLen, size_t size, uint8_t *rs)
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long) derLen);
    const BIGNUM *r, *s;
    int ok;

    if (sig == NULL) {
	return -1;
    }
    ECDSA_SIG_get0(sig, &r, &s);
    ok = BN_bn2binpad(r, rs, (int) size) == (int) size
	    && BN_bn2binpad(s, rs + size, (int) size) == (int) size;
    ECDSA_SIG_free(sig);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Signature generation                                                 */
/* ------------------------------------------------------------------ */

/*
 * A generation service keeps the signing context of the last key it
 * signed with: making one costs about a microsecond, as much as all the
 * rest of the engine's work for a call.  The context holds a reference to
 * the key's EVP_PKEY, so the pointer it is keyed on cannot be reused by
 * another key while it lives; it is replaced when the service signs with
 * another key, and freed when the service closes.
 */
typedef struct SignGenService {
    EVP_MD_CTX *mdctx;
    EVP_PKEY_CTX *pctx;		/* signing context of pctxKey, or NULL */
    const EVP_PKEY *pctxKey;
    hsm_signature_scheme_id_t prepared[PREPARED_MAX];	/* FIFO */
    int nPrepared;
} SignGenService;

static void
FreeSignGenService(void *priv)
{
    SignGenService *svc = priv;

    if (svc != NULL) {
	EVP_PKEY_CTX_free(svc->pctx);
	EVP_MD_CTX_free(svc->mdctx);
	free(svc);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * KeyContext --
 *	The cached EVP_PKEY_CTX of pkey in *ctx (keyed on *ctxKey), made
 *	anew when pkey is another key.  NULL if OpenSSL cannot make one.
 *
 *----------------------------------------------------------------------
 */

static EVP_PKEY_CTX *
KeyContext(EVP_PKEY_CTX **ctx, const EVP_PKEY **ctxKey, EVP_PKEY *pkey)
{
    if (*ctx == NULL || *ctxKey != pkey) {
	EVP_PKEY_CTX_free(*ctx);
	*ctxKey = NULL;
	if ((*ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) != NULL) {
	    *ctxKey = pkey;
	}
    }
    return *ctx;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_open_signature_generation_service --
 *	Opens a signature generation service on a key store service.  No
 *	service flags are defined; their value is ignored.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_open_signature_generation_service(hsm_hdl_t key_store_hdl,
	open_svc_sign_gen_args_t *args, hsm_hdl_t *signature_gen_hdl)
{
    SignGenService *svc;

    if (args == NULL || signature_gen_hdl == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "open signature generation "
		"service: %s is NULL", args == NULL ? "args"
		: "signature_gen_hdl");
    }
    if ((svc = calloc(1, sizeof(*svc))) == NULL
	    || (svc->mdctx = EVP_MD_CTX_new()) == NULL) {
	free(svc);
	return hsm_fail(HSM_OUT_OF_MEMORY, "open signature generation "
		"service: out of memory for its context");
    }
    return hsm_object_open(key_store_hdl, HSM_KIND_KEY_STORE,
	    HSM_KIND_SIGN_GEN, svc, FreeSignGenService, signature_gen_hdl);
}

hsm_err_t
hsm_close_signature_generation_service(hsm_hdl_t signature_gen_hdl)
{
    return hsm_object_close(signature_gen_hdl, HSM_KIND_SIGN_GEN);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_prepare_signature --
 *	Records a prepared signature for a scheme in the service; a later
 *	hsm_generate_signature with LOW_LATENCY_SIGNATURE and the same
 *	scheme consumes it.  OpenSSL computes the nonce itself, so nothing
 *	is precomputed: the record keeps the API's contract (one
 *	low-latency signature per preparation), not its speed.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_prepare_signature(hsm_hdl_t signature_gen_hdl, op_prepare_sign_args_t *args)
{
    static const char fn[] = "prepare_signature";
    HsmOp op;
    SignGenService *svc;
    const HsmKeyTypeInfo *info;
    hsm_err_t err;

    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: args is NULL", fn);
    }
    if ((err = hsm_op_begin(signature_gen_hdl, HSM_KIND_SIGN_GEN, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    svc = op.obj->priv;
    if ((err = SchemeInfo(fn, args->scheme_id, &info)) != HSM_NO_ERROR) {
	goto done;
    }
    if (args->flags & ~(HSM_OP_PREPARE_SIGN_INPUT_MESSAGE
	    | HSM_OP_PREPARE_SIGN_COMPRESSED_POINT)) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags is 0x%02x, only bits 0 "
		"(INPUT_MESSAGE) and 1 (COMPRESSED_POINT) are defined", fn,
		args->flags);
	goto done;
    }
    if (svc->nPrepared == PREPARED_MAX) {
	err = hsm_fail(HSM_OUT_OF_MEMORY, "%s: the service already holds %d "
		"prepared signatures (the most it keeps); use them first", fn,
		PREPARED_MAX);
	goto done;
    }
    svc->prepared[svc->nPrepared++] = args->scheme_id;

  done:
    return hsm_op_end(&op, err);
}

/*
 *----------------------------------------------------------------------
 *
 * FindPrepared, DropPrepared --
 *	The index of the oldest prepared signature of scheme (-1 if none),
 *	and its removal once the signature it was for has been made.
 *
 *----------------------------------------------------------------------
 */

static int
FindPrepared(const SignGenService *svc, hsm_signature_scheme_id_t scheme)
{
    int i;

    for (i = 0; i < svc->nPrepared; i++) {
	if (svc->prepared[i] == scheme) {
	    return i;
	}
    }
    return -1;
}

static void
DropPrepared(SignGenService *svc, int i)
{
    memmove(svc->prepared + i, svc->prepared + i + 1,
	    (size_t) (svc->nPrepared - i - 1) * sizeof(svc->prepared[0]));
    svc->nPrepared--;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_generate_signature --
 *	ECDSA with the key store key over a digest or a message (hashed
 *	with the scheme's digest), r || s || Ry out.  Ry is the parity of
 *	the nonce point's y with COMPRESSED_POINT, else 0.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_generate_signature(hsm_hdl_t signature_gen_hdl,
	op_generate_sign_args_t *args)
{
    static const char fn[] = "generate_signature";
    const hsm_op_generate_sign_flags_t known =
	    HSM_OP_GENERATE_SIGN_FLAGS_INPUT_MESSAGE
	    | HSM_OP_GENERATE_SIGN_FLAGS_COMPRESSED_POINT
	    | HSM_OP_GENERATE_SIGN_FLAGS_LOW_LATENCY_SIGNATURE;
    HsmOp op;
    SignGenService *svc;
    const HsmKey *key;
    const HsmKeyTypeInfo *info;
    EVP_PKEY_CTX *pctx;
    uint8_t dig[MAX_DIGEST], der[2 * MAX_COORD + 16];
    uint8_t sig[2 * MAX_COORD + 1], pub[2 * MAX_COORD];
    size_t digLen = 0, derLen = sizeof(der), sigLen;
    int compressed, parity = 0, rMatches = 0, prepared = -1;
    hsm_err_t err;

    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: args is NULL", fn);
    }
    if ((err = hsm_op_begin(signature_gen_hdl, HSM_KIND_SIGN_GEN, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    svc = op.obj->priv;
    compressed = (args->flags & HSM_OP_GENERATE_SIGN_FLAGS_COMPRESSED_POINT)
	    != 0;
    if ((err = SchemeInfo(fn, args->scheme_id, &info)) != HSM_NO_ERROR) {
	goto done;
    }
    if (args->flags & ~known) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags is 0x%02x, only bits 0 "
		"(INPUT_MESSAGE), 1 (COMPRESSED_POINT) and 2 "
		"(LOW_LATENCY_SIGNATURE) are defined", fn, args->flags);
	goto done;
    }
    sigLen = 2 * info->size + 1;
    if (args->signature_size != sigLen) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: signature_size is %u, must be "
		"%u for %s (r || s || Ry)", fn, args->signature_size,
		(unsigned) sigLen, info->name + 6);
	goto done;
    }
    if ((args->message_size > 0 && args->message == NULL)
	    || args->signature == NULL) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "%s: %s is NULL", fn,
		args->signature == NULL ? "signature" : "message");
	goto done;
    }
    if ((err = hsm_op_key(&op, args->key_identifier, HSM_USE_SIGN, &key))
	    != HSM_NO_ERROR) {
	goto done;
    }
    if (key->type != info->type) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: scheme_id 0x%02x signs with %s "
		"keys but key %u is %s", fn, args->scheme_id, info->name,
		key->id, key->typeInfo->name);
	goto done;
    }
    if ((err = Digest(fn, svc->mdctx, info,
	    (args->flags & HSM_OP_GENERATE_SIGN_FLAGS_INPUT_MESSAGE) != 0,
	    args->message, args->message_size, dig, &digLen)) != HSM_NO_ERROR) {
	goto done;
    }
    if ((args->flags & HSM_OP_GENERATE_SIGN_FLAGS_LOW_LATENCY_SIGNATURE)
	    && (prepared = FindPrepared(svc, args->scheme_id)) < 0) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: LOW_LATENCY_SIGNATURE but no "
		"signature was prepared for scheme 0x%02x on this service "
		"(call hsm_prepare_signature first)", fn, args->scheme_id);
	goto done;
    }
    if ((pctx = KeyContext(&svc->pctx, &svc->pctxKey, key->pkey)) == NULL
	    || EVP_PKEY_sign_init(pctx) != 1
	    || EVP_PKEY_sign(pctx, der, &derLen, dig, digLen) != 1
	    || DerToSig(der, derLen, info->size, sig) != 0) {
	err = hsm_fail_ossl("generate_signature: ECDSA signing failed");
	goto done;
    }
    if (compressed) {
	if (hsm_ec_public_bytes(info, key->pkey, pub, 2 * info->size) != 0
		|| NonceParity(info, pub, sig, dig, digLen, &parity,
			&rMatches) != 0 || !rMatches) {
	    err = hsm_fail_ossl("generate_signature: recovering the nonce "
		    "point R failed");
	    goto done;
	}
    }
    sig[2 * info->size] = (uint8_t) parity;
    memcpy(args->signature, sig, sigLen);
    if (prepared >= 0) {
	DropPrepared(svc, prepared);
    }

  done:
    return hsm_op_end(&op, err);
}

/* ------------------------------------------------------------------ */
/* Signature verification                                               */
/* ------------------------------------------------------------------ */

typedef struct ImportedKey {
    uint32_t ref;
    const HsmKeyTypeInfo *info;
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *ctx;		/* verification context, made on first use */
    const EVP_PKEY *ctxKey;
    uint8_t xy[2 * MAX_COORD];
} ImportedKey;

typedef struct SignVerService {
    EVP_MD_CTX *mdctx;
    ImportedKey *keys;		/* imported public keys */
    size_t nKeys, capKeys;
    /* The last x || y key given directly, kept to skip re-validation. */
    ImportedKey last;
} SignVerService;

/* Key references are unique in the process, so a reference is never valid
 * in a service other than the one that made it. */
static PlatMutex refMutex = PLAT_MUTEX_INITIALIZER;
static uint32_t refCounter;

static void
FreeSignVerService(void *priv)
{
    SignVerService *svc = priv;
    size_t i;

    if (svc != NULL) {
	for (i = 0; i < svc->nKeys; i++) {
	    EVP_PKEY_CTX_free(svc->keys[i].ctx);
	    EVP_PKEY_free(svc->keys[i].pkey);
	}
	free(svc->keys);
	EVP_PKEY_CTX_free(svc->last.ctx);
	EVP_PKEY_free(svc->last.pkey);
	EVP_MD_CTX_free(svc->mdctx);
	free(svc);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_open_signature_verification_service --
 *	Opens a signature verification service on a session.  No service
 *	flags are defined; their value is ignored.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_open_signature_verification_service(hsm_hdl_t session_hdl,
	open_svc_sign_ver_args_t *args, hsm_hdl_t *signature_ver_hdl)
{
    SignVerService *svc;

    if (args == NULL || signature_ver_hdl == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "open signature verification "
		"service: %s is NULL", args == NULL ? "args"
		: "signature_ver_hdl");
    }
    if ((svc = calloc(1, sizeof(*svc))) == NULL
	    || (svc->mdctx = EVP_MD_CTX_new()) == NULL) {
	free(svc);
	return hsm_fail(HSM_OUT_OF_MEMORY, "open signature verification "
		"service: out of memory for its context");
    }
    return hsm_object_open(session_hdl, HSM_KIND_SESSION, HSM_KIND_SIGN_VER,
	    svc, FreeSignVerService, signature_ver_hdl);
}

hsm_err_t
hsm_close_signature_verification_service(hsm_hdl_t signature_ver_hdl)
{
    return hsm_object_close(signature_ver_hdl, HSM_KIND_SIGN_VER);
}

/*
 *----------------------------------------------------------------------
 *
 * PublicKeyInfo --
 *	The key type entry of a public key type given to import: an EC type
 *	the engine supports.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
PublicKeyInfo(const char *fn, hsm_key_type_t type, const HsmKeyTypeInfo **info)
{
    *info = hsm_key_type_info(type);
    if (*info == NULL || !(*info)->isEc) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: key_type 0x%02x is not an EC "
		"key type", fn, type);
    }
    if (!(*info)->supported) {
	return hsm_fail(HSM_FEATURE_NOT_SUPPORTED, "%s: key_type %s (0x%02x) "
		"is not supported", fn, (*info)->name, type);
    }
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_import_public_key --
 *	Validates a public key x || y (a point of the curve) and keeps it in
 *	the verification service; *key_ref is the 4-byte reference to pass
 *	(as the bytes of the uint32_t, key_size 4) with KEY_INTERNAL.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_import_public_key(hsm_hdl_t signature_ver_hdl,
	op_import_public_key_args_t *args, uint32_t *key_ref)
{
    static const char fn[] = "import_public_key";
    HsmOp op;
    SignVerService *svc;
    const HsmKeyTypeInfo *info;
    EVP_PKEY *pkey = NULL;
    ImportedKey *k;
    hsm_err_t err;

    if (args == NULL || key_ref == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: %s is NULL", fn,
		args == NULL ? "args" : "key_ref");
    }
    if ((err = hsm_op_begin(signature_ver_hdl, HSM_KIND_SIGN_VER, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    svc = op.obj->priv;
    if ((err = PublicKeyInfo(fn, args->key_type, &info)) != HSM_NO_ERROR) {
	goto done;
    }
    if (args->flags != 0) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags is 0x%02x, no flag is "
		"defined", fn, args->flags);
	goto done;
    }
    if (args->key_size != 2 * info->size) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: key_size is %u, must be %u for "
		"%s (x || y, uncompressed)", fn, args->key_size,
		(unsigned) (2 * info->size), info->name);
	goto done;
    }
    if (args->key == NULL) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "%s: key is NULL", fn);
	goto done;
    }
    if (svc->nKeys == IMPORTED_MAX) {
	err = hsm_fail(HSM_OUT_OF_MEMORY, "%s: the service already holds %d "
		"public keys (the most it keeps)", fn, IMPORTED_MAX);
	goto done;
    }
    if (hsm_ec_from_public(info, args->key, args->key_size, &pkey) != 0) {
	ERR_clear_error();
	err = hsm_fail(HSM_INVALID_PARAM, "%s: key is not a point of %s", fn,
		info->group);
	goto done;
    }
    if (svc->nKeys == svc->capKeys) {
	size_t cap = svc->capKeys ? 2 * svc->capKeys : 8;
	ImportedKey *keys = realloc(svc->keys, cap * sizeof(*keys));

	if (keys == NULL) {
	    EVP_PKEY_free(pkey);
	    err = hsm_fail(HSM_OUT_OF_MEMORY, "%s: out of memory", fn);
	    goto done;
	}
	svc->keys = keys;
	svc->capKeys = cap;
    }
    k = &svc->keys[svc->nKeys++];
    memset(k, 0, sizeof(*k));
    k->info = info;
    k->pkey = pkey;
    memcpy(k->xy, args->key, args->key_size);
    plat_mutex_lock(&refMutex);
    k->ref = ++refCounter;
    if (k->ref == 0) {		/* after 2^32 imports: skip 0 */
	k->ref = ++refCounter;
    }
    plat_mutex_unlock(&refMutex);
    *key_ref = k->ref;

  done:
    return hsm_op_end(&op, err);
}

/*
 *----------------------------------------------------------------------
 *
 * VerifyKey --
 *	The verification key of an hsm_verify_signature call: an imported
 *	key (KEY_INTERNAL) or x || y, validated (kept as the service's last
 *	key, so verifying many signatures of one key validates it once).
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
VerifyKey(const char *fn, SignVerService *svc, const op_verify_sign_args_t *args,
	const HsmKeyTypeInfo *info, ImportedKey **key)
{
    size_t i;

    if (args->key == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: key is NULL", fn);
    }
    if (args->flags & HSM_OP_VERIFY_SIGN_FLAGS_KEY_INTERNAL) {
	uint32_t ref;

	if (args->key_size != sizeof(ref)) {
	    return hsm_fail(HSM_INVALID_PARAM, "%s: key_size is %u, must be 4 "
		    "with KEY_INTERNAL (a key reference)", fn, args->key_size);
	}
	memcpy(&ref, args->key, sizeof(ref));
	for (i = 0; i < svc->nKeys; i++) {
	    if (svc->keys[i].ref == ref) {
		break;
	    }
	}
	if (i == svc->nKeys) {
	    return hsm_fail(HSM_UNKNOWN_ID, "%s: key reference %u was not "
		    "imported into this verification service", fn, ref);
	}
	if (svc->keys[i].info != info) {
	    return hsm_fail(HSM_INVALID_PARAM, "%s: scheme_id 0x%02x verifies "
		    "%s keys but key reference %u is %s", fn, args->scheme_id,
		    info->name, ref, svc->keys[i].info->name);
	}
	*key = &svc->keys[i];
	return HSM_NO_ERROR;
    }
    if (args->key_size != 2 * info->size) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: key_size is %u, must be %u for "
		"%s (x || y, uncompressed)", fn, args->key_size,
		(unsigned) (2 * info->size), info->name);
    }
    if (svc->last.pkey == NULL || svc->last.info != info
	    || memcmp(svc->last.xy, args->key, args->key_size) != 0) {
	EVP_PKEY *pkey;

	if (hsm_ec_from_public(info, args->key, args->key_size, &pkey) != 0) {
	    ERR_clear_error();
	    return hsm_fail(HSM_INVALID_PARAM, "%s: key is not a point of %s",
		    fn, info->group);
	}
	EVP_PKEY_CTX_free(svc->last.ctx);
	svc->last.ctx = NULL;
	EVP_PKEY_free(svc->last.pkey);
	svc->last.pkey = pkey;
	svc->last.info = info;
	memcpy(svc->last.xy, args->key, args->key_size);
    }
    *key = &svc->last;
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_verify_signature --
 *	Verifies r || s || Ry over a digest or a message.  A signature that
 *	does not verify is not an error: the call returns HSM_NO_ERROR and
 *	*status is not HSM_VERIFICATION_STATUS_SUCCESS.  *status is set to
 *	that failure value first, so no path but a verified signature
 *	leaves SUCCESS in it.  With COMPRESSED_POINT, Ry must also be the
 *	parity of the nonce point's y.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_verify_signature(hsm_hdl_t signature_ver_hdl, op_verify_sign_args_t *args,
	hsm_verification_status_t *status)
{
    static const char fn[] = "verify_signature";
    const hsm_op_verify_sign_flags_t known =
	    HSM_OP_VERIFY_SIGN_FLAGS_INPUT_MESSAGE
	    | HSM_OP_VERIFY_SIGN_FLAGS_COMPRESSED_POINT
	    | HSM_OP_VERIFY_SIGN_FLAGS_KEY_INTERNAL;
    HsmOp op;
    SignVerService *svc;
    const HsmKeyTypeInfo *info;
    ImportedKey *key = NULL;
    EVP_PKEY_CTX *pctx;
    uint8_t dig[MAX_DIGEST], *der = NULL;
    size_t digLen = 0, derLen = 0, sigLen;
    int ret, ok;
    hsm_err_t err;

    if (status != NULL) {
	*status = VERIFICATION_FAILED;
    }
    if (args == NULL || status == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: %s is NULL", fn,
		args == NULL ? "args" : "status");
    }
    if ((err = hsm_op_begin(signature_ver_hdl, HSM_KIND_SIGN_VER, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    svc = op.obj->priv;
    if ((err = SchemeInfo(fn, args->scheme_id, &info)) != HSM_NO_ERROR) {
	goto done;
    }
    if (args->flags & ~known) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags is 0x%02x, only bits 0 "
		"(INPUT_MESSAGE), 1 (COMPRESSED_POINT) and 2 (KEY_INTERNAL) "
		"are defined", fn, args->flags);
	goto done;
    }
    sigLen = 2 * info->size + 1;
    if (args->signature_size != sigLen) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: signature_size is %u, must be "
		"%u for %s (r || s || Ry)", fn, args->signature_size,
		(unsigned) sigLen, info->name + 6);
	goto done;
    }
    if (args->signature == NULL
	    || (args->message_size > 0 && args->message == NULL)) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "%s: %s is NULL", fn,
		args->signature == NULL ? "signature" : "message");
	goto done;
    }
    if ((err = VerifyKey(fn, svc, args, info, &key)) != HSM_NO_ERROR
	    || (err = Digest(fn, svc->mdctx, info,
		    (args->flags & HSM_OP_VERIFY_SIGN_FLAGS_INPUT_MESSAGE) != 0,
		    args->message, args->message_size, dig, &digLen))
		    != HSM_NO_ERROR) {
	goto done;
    }
    if (SigToDer(args->signature, info->size, &der, &derLen) != 0) {
	err = hsm_fail_ossl("verify_signature: encoding the signature failed");
	goto done;
    }
    if ((pctx = KeyContext(&key->ctx, &key->ctxKey, key->pkey)) == NULL
	    || EVP_PKEY_verify_init(pctx) != 1) {
	err = hsm_fail_ossl("verify_signature: ECDSA set-up failed");
	goto done;
    }
    ret = EVP_PKEY_verify(pctx, der, derLen, dig, digLen);
    ERR_clear_error();
    ok = ret == 1;
    if (ok && (args->flags & HSM_OP_VERIFY_SIGN_FLAGS_COMPRESSED_POINT)) {
	int parity = 0, rMatches = 0;

	if (NonceParity(info, key->xy, args->signature, dig, digLen, &parity,
		&rMatches) != 0) {
	    err = hsm_fail_ossl("verify_signature: recovering the nonce point "
		    "R failed");
	    goto done;
	}
	ok = rMatches && args->signature[2 * info->size] == parity;
    }
    if (ok) {
	*status = HSM_VERIFICATION_STATUS_SUCCESS;
    }

  done:
    OPENSSL_free(der);
    return hsm_op_end(&op, err);
}
