/*
 * hsm_algo.c --
 *
 *	The engine's algorithms: the key type table of the seed, OpenSSL
 *	algorithm objects fetched once per process, the one derivation
 *	function (HKDF-SHA-384), and the conversions between key bytes and
 *	EVP_PKEY.  Everything cryptographic is OpenSSL's; this file only
 *	chooses and connects.
 */

#include "hsm_int.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

/* ------------------------------------------------------------------ */
/* Key types                                                            */
/* ------------------------------------------------------------------ */

static const HsmKeyTypeInfo keyTypes[] = {
    {HSM_KEY_TYPE_ECDSA_NIST_P224,        "ECDSA_NIST_P224",        1, 0, "P-224",           28, "SHA256"},
    {HSM_KEY_TYPE_ECDSA_NIST_P256,        "ECDSA_NIST_P256",        1, 1, "P-256",           32, "SHA256"},
    {HSM_KEY_TYPE_ECDSA_NIST_P384,        "ECDSA_NIST_P384",        1, 1, "P-384",           48, "SHA384"},
    {HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_224, "ECDSA_BRAINPOOL_R1_224", 1, 0, "brainpoolP224r1", 28, "SHA256"},
    {HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256, "ECDSA_BRAINPOOL_R1_256", 1, 1, "brainpoolP256r1", 32, "SHA256"},
    {HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_384, "ECDSA_BRAINPOOL_R1_384", 1, 1, "brainpoolP384r1", 48, "SHA384"},
    {HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_224, "ECDSA_BRAINPOOL_T1_224", 1, 0, "brainpoolP224t1", 28, "SHA256"},
    {HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_256, "ECDSA_BRAINPOOL_T1_256", 1, 0, "brainpoolP256t1", 32, "SHA256"},
    {HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_384, "ECDSA_BRAINPOOL_T1_384", 1, 1, "brainpoolP384t1", 48, "SHA384"},
    {HSM_KEY_TYPE_AES_128,                "AES_128",                0, 1, NULL,              16, NULL},
    {HSM_KEY_TYPE_AES_192,                "AES_192",                0, 1, NULL,              24, NULL},
    {HSM_KEY_TYPE_AES_256,                "AES_256",                0, 1, NULL,              32, NULL},
};

const HsmKeyTypeInfo *
hsm_key_type_info(hsm_key_type_t type)
{
    size_t i;

    for (i = 0; i < sizeof(keyTypes) / sizeof(keyTypes[0]); i++) {
	if (keyTypes[i].type == type) {
	    return &keyTypes[i];
	}
    }
    return NULL;
}

hsm_key_type_t
hsm_scheme_key_type(hsm_signature_scheme_id_t scheme)
{
    /* The seed numbers each scheme like the key type it signs with. */
    switch (scheme) {
    case HSM_SIGNATURE_SCHEME_ECDSA_NIST_P224_SHA_256:
    case HSM_SIGNATURE_SCHEME_ECDSA_NIST_P256_SHA_256:
    case HSM_SIGNATURE_SCHEME_ECDSA_NIST_P384_SHA_384:
    case HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_R1_224_SHA_256:
    case HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_R1_256_SHA_256:
    case HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_R1_384_SHA_384:
    case HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_T1_224_SHA_256:
    case HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_T1_256_SHA_256:
    case HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_T1_384_SHA_384:
	return (hsm_key_type_t) scheme;
    default:
	return 0;
    }
}

/* ------------------------------------------------------------------ */
/* Algorithm objects, fetched once                                      */
/* ------------------------------------------------------------------ */

static PlatMutex algoMutex = PLAT_MUTEX_INITIALIZER;

/* [key size index][mode] */
static EVP_CIPHER *aesCache[3][5];
static EVP_MD *mdCache[4];
static EVP_MAC *cmacCache, *hmacCache;
static EVP_KDF *hkdfCache, *x963Cache;

const EVP_CIPHER *
hsm_aes(size_t keyBytes, HsmAesMode mode)
{
    static const char *const modeNames[] = {"ECB", "CBC", "CCM", "GCM", "CTR"};
    int k = keyBytes == 16 ? 0 : keyBytes == 24 ? 1 : keyBytes == 32 ? 2 : -1;
    EVP_CIPHER *c;

    if (k < 0 || (unsigned) mode > HSM_AES_CTR) {
	return NULL;
    }
    plat_mutex_lock(&algoMutex);
    c = aesCache[k][mode];
    if (c == NULL) {
	char name[32];

	snprintf(name, sizeof(name), "AES-%d-%s", (int) keyBytes * 8,
		modeNames[mode]);
	c = aesCache[k][mode] = EVP_CIPHER_fetch(NULL, name, NULL);
    }
    plat_mutex_unlock(&algoMutex);
    return c;
}

const EVP_MD *
hsm_md(const char *name)
{
    static const char *const names[] = {"SHA224", "SHA256", "SHA384", "SHA512"};
    EVP_MD *md = NULL;
    int i;

    for (i = 0; i < 4; i++) {
	if (strcmp(name, names[i]) == 0) {
	    break;
	}
    }
    if (i == 4) {
	return NULL;
    }
    plat_mutex_lock(&algoMutex);
    md = mdCache[i];
    if (md == NULL) {
	md = mdCache[i] = EVP_MD_fetch(NULL, names[i], NULL);
    }
    plat_mutex_unlock(&algoMutex);
    return md;
}

static EVP_MAC *
FetchMac(EVP_MAC **slot, const char *name)
{
    EVP_MAC *mac;

    plat_mutex_lock(&algoMutex);
    if (*slot == NULL) {
	*slot = EVP_MAC_fetch(NULL, name, NULL);
    }
    mac = *slot;
    plat_mutex_unlock(&algoMutex);
    return mac;
}

static EVP_KDF *
FetchKdf(EVP_KDF **slot, const char *name)
{
    EVP_KDF *kdf;

    plat_mutex_lock(&algoMutex);
    if (*slot == NULL) {
	*slot = EVP_KDF_fetch(NULL, name, NULL);
    }
    kdf = *slot;
    plat_mutex_unlock(&algoMutex);
    return kdf;
}

EVP_MAC *hsm_mac_cmac(void) { return FetchMac(&cmacCache, "CMAC"); }
EVP_MAC *hsm_mac_hmac(void) { return FetchMac(&hmacCache, "HMAC"); }
EVP_KDF *hsm_kdf_hkdf(void) { return FetchKdf(&hkdfCache, "HKDF"); }
EVP_KDF *hsm_kdf_x963(void) { return FetchKdf(&x963Cache, "X963KDF"); }

int
hsm_hkdf(const uint8_t *ikm, size_t ikmLen, const uint8_t *salt,
	size_t saltLen, const char *info, uint8_t *out, size_t outLen)
{
    EVP_KDF *kdf = hsm_kdf_hkdf();
    EVP_KDF_CTX *ctx;
    OSSL_PARAM params[5], *p = params;
    int ok;

    if (kdf == NULL || (ctx = EVP_KDF_CTX_new(kdf)) == NULL) {
	return -1;
    }
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *) "SHA384", 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	    (void *) ikm, ikmLen);
    if (salt != NULL && saltLen > 0) {
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
		(void *) salt, saltLen);
    }
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	    (void *) info, strlen(info));
    *p = OSSL_PARAM_construct_end();
    ok = EVP_KDF_derive(ctx, out, outLen, params) == 1;
    EVP_KDF_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* EC keys                                                              */
/* ------------------------------------------------------------------ */

int
hsm_ec_generate(const HsmKeyTypeInfo *info, EVP_PKEY **pkey)
{
    *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", info->group);
    return *pkey ? 0 : -1;
}

/* Builds an EC EVP_PKEY from an optional private scalar and a public point
 * in uncompressed form (0x04 || x || y). */
static int
FromData(const HsmKeyTypeInfo *info, const BIGNUM *priv, const uint8_t *point,
	size_t pointLen, EVP_PKEY **pkey)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL, *check = NULL;
    int selection = priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY;
    int ok = 0;

    *pkey = NULL;
    if (bld == NULL
	    || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
		    info->group, 0)
	    || !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
		    point, pointLen)
	    || (priv && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv))
	    || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL
	    || (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL
	    || EVP_PKEY_fromdata_init(ctx) != 1
	    || EVP_PKEY_fromdata(ctx, pkey, selection, params) != 1) {
	goto done;
    }
    /* A point off the curve must never get in (invalid-curve attacks). */
    if ((check = EVP_PKEY_CTX_new_from_pkey(NULL, *pkey, NULL)) == NULL
	    || EVP_PKEY_public_check(check) != 1) {
	goto done;
    }
    ok = 1;

  done:
    if (!ok) {
	EVP_PKEY_free(*pkey);
	*pkey = NULL;
    }
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return ok ? 0 : -1;
}

/* The NID of a key type's curve: NIST names ("P-256") or short names. */
static int
CurveNid(const HsmKeyTypeInfo *info)
{
    int nid = EC_curve_nist2nid(info->group);

    return nid != NID_undef ? nid : OBJ_sn2nid(info->group);
}

int
hsm_ec_from_private(const HsmKeyTypeInfo *info, const uint8_t *scalar,
	size_t len, EVP_PKEY **pkey)
{
    EC_GROUP *group = NULL;
    EC_POINT *pub = NULL;
    BIGNUM *priv = NULL;
    BN_CTX *bn = NULL;
    uint8_t point[1 + 2 * 66];
    size_t pointLen;
    int ok = -1;

    *pkey = NULL;
    if (len != info->size || 2 * info->size + 1 > sizeof(point)) {
	return -1;
    }
    if ((group = EC_GROUP_new_by_curve_name(CurveNid(info))) == NULL) {
	return -1;
    }
    if ((bn = BN_CTX_secure_new()) == NULL
	    || (priv = BN_secure_new()) == NULL
	    || BN_bin2bn(scalar, (int) len, priv) == NULL
	    || BN_is_zero(priv)
	    || BN_cmp(priv, EC_GROUP_get0_order(group)) >= 0
	    || (pub = EC_POINT_new(group)) == NULL
	    || !EC_POINT_mul(group, pub, priv, NULL, NULL, bn)
	    || (pointLen = EC_POINT_point2oct(group, pub,
		    POINT_CONVERSION_UNCOMPRESSED, point, sizeof(point), bn)) == 0) {
	goto done;
    }
    ok = FromData(info, priv, point, pointLen, pkey);

  done:
    BN_clear_free(priv);
    EC_POINT_free(pub);
    EC_GROUP_free(group);
    BN_CTX_free(bn);
    return ok;
}

int
hsm_ec_from_public(const HsmKeyTypeInfo *info, const uint8_t *xy, size_t len,
	EVP_PKEY **pkey)
{
    uint8_t point[1 + 2 * 66];

    *pkey = NULL;
    if (len != 2 * info->size || len + 1 > sizeof(point)) {
	return -1;
    }
    point[0] = POINT_CONVERSION_UNCOMPRESSED;
    memcpy(point + 1, xy, len);
    return FromData(info, NULL, point, len + 1, pkey);
}

int
hsm_ec_private_bytes(const HsmKeyTypeInfo *info, const EVP_PKEY *pkey,
	uint8_t *out, size_t outLen)
{
    BIGNUM *priv = NULL;
    int ok;

    if (outLen != info->size
	    || !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &priv)) {
	return -1;
    }
    ok = BN_bn2binpad(priv, out, (int) outLen) == (int) outLen;
    BN_clear_free(priv);
    return ok ? 0 : -1;
}

int
hsm_ec_public_bytes(const HsmKeyTypeInfo *info, const EVP_PKEY *pkey,
	uint8_t *out, size_t outLen)
{
    BIGNUM *x = NULL, *y = NULL;
    int ok;

    if (outLen != 2 * info->size
	    || !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x)
	    || !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y)) {
	BN_free(x);
	return -1;
    }
    ok = BN_bn2binpad(x, out, (int) info->size) == (int) info->size
	    && BN_bn2binpad(y, out + info->size, (int) info->size) == (int) info->size;
    BN_free(x);
    BN_free(y);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Secure memory                                                        */
/* ------------------------------------------------------------------ */

uint8_t *
hsm_secure_alloc(size_t len)
{
    return OPENSSL_secure_zalloc(len ? len : 1);
}

void
hsm_secure_free(uint8_t *ptr, size_t len)
{
    if (ptr != NULL) {
	OPENSSL_secure_clear_free(ptr, len ? len : 1);
    }
}
