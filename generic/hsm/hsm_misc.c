/*
 * hsm_misc.c --
 *
 *	The smaller services of the engine: random numbers (hsm_get_random),
 *	hashing (hsm_hash_one_go), AES-CMAC (hsm_mac_one_go), and the public
 *	key operations: reconstruction from an implicit certificate,
 *	decompression, and recovery of a key store key's public key.
 *
 *	Hash and mac services keep their OpenSSL context for their whole
 *	life, so an operation costs one re-initialisation and the primitive.
 *	Points that come in are validated (on the curve, coordinates in
 *	range) before any arithmetic.
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

#define MAX_COORD	48
#define CMAC_MIN	4
#define CMAC_MAX	16

/* The status a failed MAC verification reports (anything but SUCCESS). */
#define MAC_VERIFICATION_FAILED ((hsm_mac_verification_status_t) 0)

/* ------------------------------------------------------------------ */
/* Random numbers                                                       */
/* ------------------------------------------------------------------ */

/*
 *----------------------------------------------------------------------
 *
 * hsm_open_rng_service, hsm_close_rng_service --
 *	An rng service on a session: it has no state of its own.  No service
 *	flags are defined; their value is ignored.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_open_rng_service(hsm_hdl_t session_hdl, open_svc_rng_args_t *args,
	hsm_hdl_t *rng_hdl)
{
    if (args == NULL || rng_hdl == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "open rng service: %s is NULL",
		args == NULL ? "args" : "rng_hdl");
    }
    return hsm_object_open(session_hdl, HSM_KIND_SESSION, HSM_KIND_RNG, NULL,
	    NULL, rng_hdl);
}

hsm_err_t
hsm_close_rng_service(hsm_hdl_t rng_hdl)
{
    return hsm_object_close(rng_hdl, HSM_KIND_RNG);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_get_random --
 *	random_size bytes from the HSM's random generator.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_get_random(hsm_hdl_t rng_hdl, op_get_random_args_t *args)
{
    HsmOp op;
    hsm_err_t err;

    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "get_random: args is NULL");
    }
    if ((err = hsm_op_begin(rng_hdl, HSM_KIND_RNG, &op)) != HSM_NO_ERROR) {
	return err;
    }
    if (args->random_size == 0) {
	err = hsm_fail(HSM_INVALID_PARAM,
		"get_random: random_size is 0, must be at least 1");
    } else if (args->output == NULL) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "get_random: output is NULL");
    } else {
	err = hsm_device_random(op.obj->device, args->output,
		args->random_size);
    }
    return hsm_op_end(&op, err);
}

/* ------------------------------------------------------------------ */
/* Hashing                                                              */
/* ------------------------------------------------------------------ */

typedef struct HashService {
    EVP_MD_CTX *ctx;
} HashService;

static void
FreeHashService(void *priv)
{
    HashService *svc = priv;

    if (svc != NULL) {
	EVP_MD_CTX_free(svc->ctx);
	free(svc);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_open_hash_service, hsm_close_hash_service --
 *	A hash service on a session, with its digest context.  No service
 *	flags are defined; their value is ignored.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_open_hash_service(hsm_hdl_t session_hdl, open_svc_hash_args_t *args,
	hsm_hdl_t *hash_hdl)
{
    HashService *svc;

    if (args == NULL || hash_hdl == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "open hash service: %s is NULL",
		args == NULL ? "args" : "hash_hdl");
    }
    if ((svc = calloc(1, sizeof(*svc))) == NULL
	    || (svc->ctx = EVP_MD_CTX_new()) == NULL) {
	free(svc);
	return hsm_fail(HSM_OUT_OF_MEMORY,
		"open hash service: out of memory for its context");
    }
    return hsm_object_open(session_hdl, HSM_KIND_SESSION, HSM_KIND_HASH, svc,
	    FreeHashService, hash_hdl);
}

hsm_err_t
hsm_close_hash_service(hsm_hdl_t hash_hdl)
{
    return hsm_object_close(hash_hdl, HSM_KIND_HASH);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_hash_one_go --
 *	SHA-224, SHA-256, SHA-384 or SHA-512 of the input; output_size must
 *	be the digest size.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_hash_one_go(hsm_hdl_t hash_hdl, op_hash_one_go_args_t *args)
{
    static const char *const names[] = {"SHA224", "SHA256", "SHA384", "SHA512"};
    static const uint32_t sizes[] = {28, 32, 48, 64};
    HsmOp op;
    HashService *svc;
    const EVP_MD *md;
    uint8_t dig[64];
    unsigned int n = 0;
    hsm_err_t err;

    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "hash_one_go: args is NULL");
    }
    if ((err = hsm_op_begin(hash_hdl, HSM_KIND_HASH, &op)) != HSM_NO_ERROR) {
	return err;
    }
    svc = op.obj->priv;
    if (args->algo > HSM_HASH_ALGO_SHA_512) {
	err = hsm_fail(HSM_INVALID_PARAM, "hash_one_go: algo is 0x%02x, must "
		"be SHA_224 (0), SHA_256 (1), SHA_384 (2) or SHA_512 (3)",
		args->algo);
	goto done;
    }
    if (args->flags != 0) {
	err = hsm_fail(HSM_INVALID_PARAM, "hash_one_go: flags is 0x%02x, no "
		"flag is defined", args->flags);
	goto done;
    }
    if (args->output_size != sizes[args->algo]) {
	err = hsm_fail(HSM_INVALID_PARAM, "hash_one_go: output_size is %u, "
		"must be %u for %s", args->output_size, sizes[args->algo],
		names[args->algo]);
	goto done;
    }
    if (args->output == NULL || (args->input_size > 0 && args->input == NULL)) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "hash_one_go: %s is NULL",
		args->output == NULL ? "output" : "input");
	goto done;
    }
    if ((md = hsm_md(names[args->algo])) == NULL) {
	err = hsm_fail(HSM_GENERAL_ERROR, "hash_one_go: OpenSSL has no %s",
		names[args->algo]);
	goto done;
    }
    if (EVP_DigestInit_ex2(svc->ctx, md, NULL) != 1
	    || EVP_DigestUpdate(svc->ctx, args->input, args->input_size) != 1
	    || EVP_DigestFinal_ex(svc->ctx, dig, &n) != 1
	    || n != args->output_size) {
	err = hsm_fail_ossl("hash_one_go: hashing failed");
	goto done;
    }
    memcpy(args->output, dig, n);

  done:
    return hsm_op_end(&op, err);
}

/* ------------------------------------------------------------------ */
/* MAC                                                                  */
/* ------------------------------------------------------------------ */

typedef struct MacService {
    EVP_MAC_CTX *ctx;
    size_t cipherKeyLen;	/* AES key size ctx's cipher is set for, or 0 */
} MacService;

static void
FreeMacService(void *priv)
{
    MacService *svc = priv;

    if (svc != NULL) {
	EVP_MAC_CTX_free(svc->ctx);
	free(svc);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_open_mac_service, hsm_close_mac_service --
 *	A mac service on a key store service, with its CMAC context.  No
 *	service flags are defined; their value is ignored.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_open_mac_service(hsm_hdl_t key_store_hdl, open_svc_mac_args_t *args,
	hsm_hdl_t *mac_hdl)
{
    MacService *svc;
    EVP_MAC *cmac = hsm_mac_cmac();

    if (args == NULL || mac_hdl == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "open mac service: %s is NULL",
		args == NULL ? "args" : "mac_hdl");
    }
    if (cmac == NULL) {
	return hsm_fail(HSM_GENERAL_ERROR, "open mac service: OpenSSL has no "
		"CMAC");
    }
    if ((svc = calloc(1, sizeof(*svc))) == NULL
	    || (svc->ctx = EVP_MAC_CTX_new(cmac)) == NULL) {
	free(svc);
	return hsm_fail(HSM_OUT_OF_MEMORY,
		"open mac service: out of memory for its context");
    }
    return hsm_object_open(key_store_hdl, HSM_KIND_KEY_STORE, HSM_KIND_MAC,
	    svc, FreeMacService, mac_hdl);
}

hsm_err_t
hsm_close_mac_service(hsm_hdl_t mac_hdl)
{
    return hsm_object_close(mac_hdl, HSM_KIND_MAC);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_mac_one_go --
 *	AES-CMAC (NIST SP 800-38B) of the payload with a key store key,
 *	truncated to mac_size (4..16) bytes: generated into mac, or compared
 *	in constant time with mac.  *status (may be NULL when generating) is
 *	HSM_MAC_VERIFICATION_STATUS_SUCCESS only after a verification that
 *	matched, 0 on every other path.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_mac_one_go(hsm_hdl_t mac_hdl, op_mac_one_go_args_t *args,
	hsm_mac_verification_status_t *status)
{
    HsmOp op;
    MacService *svc;
    const HsmKey *key;
    uint8_t tag[CMAC_MAX];
    size_t tagLen = 0;
    int generate;
    hsm_err_t err;

    if (status != NULL) {
	*status = MAC_VERIFICATION_FAILED;
    }
    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "mac_one_go: args is NULL");
    }
    if ((err = hsm_op_begin(mac_hdl, HSM_KIND_MAC, &op)) != HSM_NO_ERROR) {
	return err;
    }
    svc = op.obj->priv;
    generate = (args->flags & HSM_OP_MAC_ONE_GO_FLAGS_MAC_GENERATION) != 0;
    if (args->algorithm != HSM_OP_MAC_ONE_GO_ALGO_AES_CMAC) {
	err = hsm_fail(HSM_INVALID_PARAM, "mac_one_go: algorithm is 0x%02x, "
		"must be AES_CMAC (0x01)", args->algorithm);
	goto done;
    }
    if (args->flags & ~HSM_OP_MAC_ONE_GO_FLAGS_MAC_GENERATION) {
	err = hsm_fail(HSM_INVALID_PARAM, "mac_one_go: flags is 0x%02x, only "
		"bit 0 (MAC_GENERATION) is defined", args->flags);
	goto done;
    }
    if (args->mac_size < CMAC_MIN || args->mac_size > CMAC_MAX) {
	err = hsm_fail(HSM_INVALID_PARAM, "mac_one_go: mac_size is %u, must be "
		"%d to %d", args->mac_size, CMAC_MIN, CMAC_MAX);
	goto done;
    }
    if (args->mac == NULL || (args->payload_size > 0 && args->payload == NULL)
	    || (!generate && status == NULL)) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "mac_one_go: %s is NULL",
		args->mac == NULL ? "mac" : (!generate && status == NULL)
		? "status (needed to verify)" : "payload");
	goto done;
    }
    if ((err = hsm_op_key(&op, args->key_identifier, HSM_USE_MAC, &key))
	    != HSM_NO_ERROR) {
	goto done;
    }
    /* The cipher is set only when the key size changes: setting it by
     * name costs a fetch. */
    if (svc->cipherKeyLen != key->secretLen) {
	const EVP_CIPHER *cbc = hsm_aes(key->secretLen, HSM_AES_CBC);
	OSSL_PARAM params[2];

	svc->cipherKeyLen = 0;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER,
		(char *) (cbc ? EVP_CIPHER_get0_name(cbc) : ""), 0);
	params[1] = OSSL_PARAM_construct_end();
	if (cbc == NULL || EVP_MAC_CTX_set_params(svc->ctx, params) != 1) {
	    err = hsm_fail_ossl("mac_one_go: CMAC set-up failed");
	    goto done;
	}
	svc->cipherKeyLen = key->secretLen;
    }
    if (EVP_MAC_init(svc->ctx, key->secret, key->secretLen, NULL) != 1
	    || EVP_MAC_update(svc->ctx, args->payload, args->payload_size) != 1
	    || EVP_MAC_final(svc->ctx, tag, &tagLen, sizeof(tag)) != 1
	    || tagLen != CMAC_MAX) {
	err = hsm_fail_ossl("mac_one_go: CMAC failed");
	goto done;
    }
    if (generate) {
	memcpy(args->mac, tag, args->mac_size);
    } else if (CRYPTO_memcmp(tag, args->mac, args->mac_size) == 0) {
	*status = HSM_MAC_VERIFICATION_STATUS_SUCCESS;
    }

  done:
    OPENSSL_cleanse(tag, sizeof(tag));
    return hsm_op_end(&op, err);
}

/* ------------------------------------------------------------------ */
/* Public keys                                                          */
/* ------------------------------------------------------------------ */

static PlatMutex groupMutex = PLAT_MUTEX_INITIALIZER;
static EC_GROUP *groupCache[8];

/*
 *----------------------------------------------------------------------
 *
 * CurveGroup --
 *	The EC_GROUP of a supported EC key type, made once per process and
 *	shared read-only.  NULL if OpenSSL lacks it.
 *
 *----------------------------------------------------------------------
 */

static const EC_GROUP *
CurveGroup(const HsmKeyTypeInfo *info)
{
    static const hsm_key_type_t types[] = {
	HSM_KEY_TYPE_ECDSA_NIST_P256, HSM_KEY_TYPE_ECDSA_NIST_P384,
	HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256, HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_384,
	HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_384
    };
    EC_GROUP *group;
    size_t i;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
	if (types[i] == info->type) {
	    break;
	}
    }
    if (i == sizeof(types) / sizeof(types[0])) {
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
 * EcKeyInfo --
 *	The entry of an EC key type the engine supports, else the error:
 *	HSM_FEATURE_NOT_SUPPORTED for the EC types the seed marks "not
 *	supported", HSM_INVALID_PARAM for anything else.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
EcKeyInfo(const char *fn, hsm_key_type_t type, const HsmKeyTypeInfo **info)
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
 * PointFromXy, PointToXy --
 *	x || y to a point of the curve (refused unless both coordinates are
 *	below p and the point is on the curve), and back.
 *
 *----------------------------------------------------------------------
 */

static EC_POINT *
PointFromXy(const EC_GROUP *group, size_t size, const uint8_t *xy, BN_CTX *bn)
{
    uint8_t oct[1 + 2 * MAX_COORD];
    EC_POINT *pt = EC_POINT_new(group);

    oct[0] = POINT_CONVERSION_UNCOMPRESSED;
    memcpy(oct + 1, xy, 2 * size);
    if (pt == NULL || !EC_POINT_oct2point(group, pt, oct, 1 + 2 * size, bn)
	    || EC_POINT_is_on_curve(group, pt, bn) != 1) {
	EC_POINT_free(pt);
	ERR_clear_error();
	return NULL;
    }
    return pt;
}

static int
PointToXy(const EC_GROUP *group, size_t size, const EC_POINT *pt,
	uint8_t *xy, BN_CTX *bn)
{
    uint8_t oct[1 + 2 * MAX_COORD];

    if (EC_POINT_is_at_infinity(group, pt)
	    || EC_POINT_point2oct(group, pt, POINT_CONVERSION_UNCOMPRESSED, oct,
		    sizeof(oct), bn) != 1 + 2 * size) {
	return -1;
    }
    memcpy(xy, oct + 1, 2 * size);
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_pub_key_reconstruction --
 *	out_key = pub_rec * hash + ca_key (SEC 4 implicit certificates):
 *	pub_rec and ca_key are points x || y of the key type's curve, hash
 *	a big-endian integer (1 to 64 bytes) reduced modulo the group order.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_pub_key_reconstruction(hsm_hdl_t session_hdl, op_pub_key_rec_args_t *args)
{
    static const char fn[] = "pub_key_reconstruction";
    HsmOp op;
    const HsmKeyTypeInfo *info;
    const EC_GROUP *group;
    EC_POINT *rec = NULL, *ca = NULL, *out = NULL;
    BN_CTX *bn = NULL;
    BIGNUM *h = NULL;
    uint8_t xy[2 * MAX_COORD];
    size_t pubLen;
    hsm_err_t err;

    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: args is NULL", fn);
    }
    if ((err = hsm_op_begin(session_hdl, HSM_KIND_SESSION, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    if ((err = EcKeyInfo(fn, args->key_type, &info)) != HSM_NO_ERROR) {
	goto done;
    }
    pubLen = 2 * info->size;
    if (args->flags != 0) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags is 0x%02x, no flag is "
		"defined", fn, args->flags);
    } else if (args->pub_rec_size != pubLen) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: pub_rec_size is %u, must be %u "
		"for %s (x || y)", fn, args->pub_rec_size, (unsigned) pubLen,
		info->name);
    } else if (args->ca_key_size != pubLen) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: ca_key_size is %u, must be %u "
		"for %s (x || y)", fn, args->ca_key_size, (unsigned) pubLen,
		info->name);
    } else if (args->out_key_size != pubLen) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: out_key_size is %u, must be %u "
		"for %s (x || y)", fn, args->out_key_size, (unsigned) pubLen,
		info->name);
    } else if (args->hash_size == 0 || args->hash_size > 64) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: hash_size is %u, must be 1 to "
		"64", fn, args->hash_size);
    } else if (args->pub_rec == NULL || args->hash == NULL
	    || args->ca_key == NULL || args->out_key == NULL) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "%s: %s is NULL", fn,
		args->pub_rec == NULL ? "pub_rec" : args->hash == NULL ? "hash"
		: args->ca_key == NULL ? "ca_key" : "out_key");
    }
    if (err != HSM_NO_ERROR) {
	goto done;
    }
    if ((group = CurveGroup(info)) == NULL || (bn = BN_CTX_new()) == NULL
	    || (h = BN_bin2bn(args->hash, args->hash_size, NULL)) == NULL
	    || !BN_nnmod(h, h, EC_GROUP_get0_order(group), bn)
	    || (out = EC_POINT_new(group)) == NULL) {
	err = hsm_fail_ossl("pub_key_reconstruction: set-up failed");
	goto done;
    }
    if ((rec = PointFromXy(group, info->size, args->pub_rec, bn)) == NULL) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: pub_rec is not a point of %s",
		fn, info->group);
	goto done;
    }
    if ((ca = PointFromXy(group, info->size, args->ca_key, bn)) == NULL) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: ca_key is not a point of %s",
		fn, info->group);
	goto done;
    }
    if (!EC_POINT_mul(group, out, NULL, rec, h, bn)
	    || !EC_POINT_add(group, out, out, ca, bn)) {
	err = hsm_fail_ossl("pub_key_reconstruction: point arithmetic failed");
	goto done;
    }
    if (PointToXy(group, info->size, out, xy, bn) != 0) {
	ERR_clear_error();
	err = hsm_fail(HSM_INVALID_PARAM, "%s: the result is the point at "
		"infinity (no public key): check pub_rec, hash and ca_key", fn);
	goto done;
    }
    memcpy(args->out_key, xy, pubLen);

  done:
    EC_POINT_free(rec);
    EC_POINT_free(ca);
    EC_POINT_free(out);
    BN_free(h);
    BN_CTX_free(bn);
    return hsm_op_end(&op, err);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_pub_key_decompression --
 *	x || lsb_y (one byte, 0 or 1) to x || y.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_pub_key_decompression(hsm_hdl_t session_hdl, op_pub_key_dec_args_t *args)
{
    static const char fn[] = "pub_key_decompression";
    HsmOp op;
    const HsmKeyTypeInfo *info;
    const EC_GROUP *group;
    EC_POINT *pt = NULL;
    BN_CTX *bn = NULL;
    uint8_t oct[1 + MAX_COORD], xy[2 * MAX_COORD];
    hsm_err_t err;

    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: args is NULL", fn);
    }
    if ((err = hsm_op_begin(session_hdl, HSM_KIND_SESSION, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    if ((err = EcKeyInfo(fn, args->key_type, &info)) != HSM_NO_ERROR) {
	goto done;
    }
    if (args->flags != 0) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags is 0x%02x, no flag is "
		"defined", fn, args->flags);
    } else if (args->key_size != info->size + 1) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: key_size is %u, must be %u for "
		"%s (x || lsb_y)", fn, args->key_size, (unsigned) info->size + 1,
		info->name);
    } else if (args->out_key_size != 2 * info->size) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: out_key_size is %u, must be %u "
		"for %s (x || y)", fn, args->out_key_size,
		(unsigned) (2 * info->size), info->name);
    } else if (args->key == NULL || args->out_key == NULL) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "%s: %s is NULL", fn,
		args->key == NULL ? "key" : "out_key");
    } else if (args->key[info->size] > 1) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: lsb_y (key byte %u) is %u, must "
		"be 0 or 1", fn, (unsigned) info->size, args->key[info->size]);
    }
    if (err != HSM_NO_ERROR) {
	goto done;
    }
    oct[0] = args->key[info->size] ? POINT_CONVERSION_COMPRESSED | 1
	    : POINT_CONVERSION_COMPRESSED;
    memcpy(oct + 1, args->key, info->size);
    if ((group = CurveGroup(info)) == NULL || (bn = BN_CTX_new()) == NULL
	    || (pt = EC_POINT_new(group)) == NULL) {
	err = hsm_fail_ossl("pub_key_decompression: set-up failed");
	goto done;
    }
    if (!EC_POINT_oct2point(group, pt, oct, 1 + info->size, bn)
	    || EC_POINT_is_on_curve(group, pt, bn) != 1
	    || PointToXy(group, info->size, pt, xy, bn) != 0) {
	ERR_clear_error();
	err = hsm_fail(HSM_INVALID_PARAM, "%s: x is not the x coordinate of a "
		"point of %s", fn, info->group);
	goto done;
    }
    memcpy(args->out_key, xy, 2 * info->size);

  done:
    EC_POINT_free(pt);
    BN_CTX_free(bn);
    return hsm_op_end(&op, err);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_pub_key_recovery --
 *	The public key x || y of a key store key pair.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_pub_key_recovery(hsm_hdl_t key_store_hdl, op_pub_key_recovery_args_t *args)
{
    static const char fn[] = "pub_key_recovery";
    HsmOp op;
    const HsmKey *key;
    const HsmKeyTypeInfo *info;
    uint8_t xy[2 * MAX_COORD];
    hsm_err_t err;

    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: args is NULL", fn);
    }
    if ((err = hsm_op_begin(key_store_hdl, HSM_KIND_KEY_STORE, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    if ((err = EcKeyInfo(fn, args->key_type, &info)) != HSM_NO_ERROR) {
	goto done;
    }
    if (args->flags != 0) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags is 0x%02x, no flag is "
		"defined", fn, args->flags);
    } else if (args->out_key_size != 2 * info->size) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: out_key_size is %u, must be %u "
		"for %s (x || y)", fn, args->out_key_size,
		(unsigned) (2 * info->size), info->name);
    } else if (args->out_key == NULL) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "%s: out_key is NULL", fn);
    } else if ((err = hsm_op_key(&op, args->key_identifier, HSM_USE_PUBLIC,
	    &key)) == HSM_NO_ERROR && key->type != args->key_type) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: key_type is %s (0x%02x) but key "
		"%u is %s (0x%02x)", fn, info->name, args->key_type, key->id,
		key->typeInfo->name, key->type);
    }
    if (err != HSM_NO_ERROR) {
	goto done;
    }
    if (hsm_ec_public_bytes(info, key->pkey, xy, 2 * info->size) != 0) {
	err = hsm_fail_ossl("pub_key_recovery: reading the public key failed");
	goto done;
    }
    memcpy(args->out_key, xy, 2 * info->size);

  done:
    return hsm_op_end(&op, err);
}
