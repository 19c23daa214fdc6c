/*
 * proto_crypto.c --
 *
 *	The cryptographic constructions of the protocol (docs/PROTOCOL.md):
 *	SHA-384, HMAC-SHA-384 and AES-256-CMAC, HKDF-SHA-384 with the
 *	protocol's labels, AES-256-GCM with the IV prepended, ECDSA P-384
 *	verification of raw r || s, sealing to a P-384 key (ephemeral ECDH,
 *	HKDF, GCM) and opening through the recipient's ECDH callback, and
 *	the P-384 key helpers of proto.h.  OpenSSL 3 EVP only; every secret
 *	is cleansed before its memory is released.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "proto.h"
#include "proto_int.h"

#define GCM_IV  12
#define GCM_TAG 16
#define COORD   48			/* P-384 coordinate size */

/*
 *----------------------------------------------------------------------
 *
 * proto_sha384, proto_hmac_sha384, proto_cmac --
 *	Digests and MACs (EVP one-shot interfaces).
 *
 *----------------------------------------------------------------------
 */

int
proto_sha384(const uint8_t *data, size_t len, uint8_t out[PROTO_DIGEST])
{
    unsigned int n = 0;
    static const uint8_t empty[1];

    if (EVP_Digest(data != NULL ? data : empty, len, out, &n, EVP_sha384(),
	    NULL) != 1 || n != PROTO_DIGEST) {
	ERR_clear_error();
	return -1;
    }
    return 0;
}

/* proto_hmac_sha384 -- HMAC-SHA-384 of data under key (48-byte tag). */
int
proto_hmac_sha384(const uint8_t *key, size_t keyLen, const uint8_t *data,
	size_t len, uint8_t out[PROTO_DIGEST])
{
    static const uint8_t empty[1];
    size_t n = 0;

    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA384", NULL, key, keyLen,
	    data != NULL ? data : empty, len, out, PROTO_DIGEST, &n) == NULL
	    || n != PROTO_DIGEST) {
	ERR_clear_error();
	return -1;
    }
    return 0;
}

/* proto_cmac -- AES-256-CMAC of data (16-byte tag). */
int
proto_cmac(const uint8_t key[PROTO_KEY], const uint8_t *data, size_t len,
	uint8_t mac[PROTO_MAC])
{
    static const uint8_t empty[1];
    size_t n = 0;

    if (EVP_Q_mac(NULL, "CMAC", NULL, "AES-256-CBC", NULL, key, PROTO_KEY,
	    data != NULL ? data : empty, len, mac, PROTO_MAC, &n) == NULL
	    || n != PROTO_MAC) {
	ERR_clear_error();
	return -1;
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_hkdf --
 *	HKDF-SHA-384 (RFC 5869): ikm, optional salt, info = label.
 *
 *----------------------------------------------------------------------
 */

int
proto_hkdf(const uint8_t *ikm, size_t ikmLen, const uint8_t *salt,
	size_t saltLen, const char *label, uint8_t *out, size_t outLen)
{
    EVP_KDF *kdf;
    EVP_KDF_CTX *ctx = NULL;
    OSSL_PARAM params[5], *p = params;
    int ok = 0;

    if (ikm == NULL || label == NULL || out == NULL || outLen == 0) {
	return -1;
    }
    if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL) {
	ERR_clear_error();
	return -1;
    }
    ctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (ctx == NULL) {
	ERR_clear_error();
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
	    (void *) label, strlen(label));
    *p = OSSL_PARAM_construct_end();
    ok = EVP_KDF_derive(ctx, out, outLen, params) == 1;
    EVP_KDF_CTX_free(ctx);
    if (!ok) {
	OPENSSL_cleanse(out, outLen);
	ERR_clear_error();
    }
    return ok ? 0 : -1;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_random --
 *	OpenSSL's DRBG (public values: nonces, IVs, ephemeral keys).
 *
 *----------------------------------------------------------------------
 */

int
proto_random(uint8_t *out, size_t len)
{
    if (len == 0) {
	return 0;
    }
    if (len > INT32_MAX || RAND_bytes(out, (int) len) != 1) {
	ERR_clear_error();
	return -1;
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_gcm_encrypt, proto_gcm_decrypt --
 *	AES-256-GCM: out = IV (12, random) || ciphertext || tag (16).  A tag
 *	that does not verify releases nothing.
 *
 *----------------------------------------------------------------------
 */

static int
Gcm(int enc, const uint8_t key[PROTO_KEY], const uint8_t iv[GCM_IV],
	const uint8_t *aad, size_t aadLen, const uint8_t *in, size_t inLen,
	uint8_t *out, uint8_t tag[GCM_TAG])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    OSSL_PARAM params[2];
    size_t done = 0;
    int n, ok = 0;

    if (ctx == NULL
	    || EVP_CipherInit_ex2(ctx, EVP_aes_256_gcm(), key, iv, enc,
		NULL) != 1) {
	goto done;
    }
    /* EVP takes int lengths: feed long inputs in pieces. */
    while (aadLen > 0) {
	int chunk = aadLen > (1u << 30) ? (1 << 30) : (int) aadLen;

	if (EVP_CipherUpdate(ctx, NULL, &n, aad, chunk) != 1) {
	    goto done;
	}
	aad += chunk;
	aadLen -= (size_t) chunk;
    }
    while (done < inLen) {
	size_t left = inLen - done;
	int chunk = left > (1u << 30) ? (1 << 30) : (int) left;

	if (EVP_CipherUpdate(ctx, out + done, &n, in + done, chunk) != 1
		|| n != chunk) {
	    goto done;
	}
	done += (size_t) chunk;
    }
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
	    tag, GCM_TAG);
    params[1] = OSSL_PARAM_construct_end();
    if (!enc && EVP_CIPHER_CTX_set_params(ctx, params) != 1) {
	goto done;
    }
    if (EVP_CipherFinal_ex(ctx, out + done, &n) != 1) {
	goto done;
    }
    if (enc && EVP_CIPHER_CTX_get_params(ctx, params) != 1) {
	goto done;
    }
    ok = 1;

  done:
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();
    return ok ? 0 : -1;
}

/* proto_gcm_encrypt -- IV (random) || AES-256-GCM ciphertext || tag. */
int
proto_gcm_encrypt(const uint8_t key[PROTO_KEY], const uint8_t *aad,
	size_t aadLen, const uint8_t *pt, size_t ptLen, uint8_t **out,
	size_t *outLen, ProtoError *err)
{
    uint8_t *buf;
    size_t len;

    *out = NULL;
    *outLen = 0;
    if (ptLen > SIZE_MAX - GCM_IV - GCM_TAG || (ptLen > 0 && pt == NULL)) {
	return proto_err(err, "AES-GCM: bad plaintext");
    }
    len = GCM_IV + ptLen + GCM_TAG;
    if ((buf = malloc(len)) == NULL) {
	return proto_err(err, "AES-GCM: no memory for %lu bytes",
		(unsigned long) len);
    }
    if (proto_random(buf, GCM_IV) != 0
	    || Gcm(1, key, buf, aad, aadLen, pt, ptLen, buf + GCM_IV,
		buf + GCM_IV + ptLen) != 0) {
	proto_clear_free(buf, len);
	return proto_err(err, "AES-GCM encryption failed");
    }
    *out = buf;
    *outLen = len;
    return 0;
}

/* proto_gcm_decrypt -- the plaintext of IV || ct || tag, or nothing. */
int
proto_gcm_decrypt(const uint8_t key[PROTO_KEY], const uint8_t *aad,
	size_t aadLen, const uint8_t *in, size_t inLen, uint8_t **pt,
	size_t *ptLen, ProtoError *err)
{
    uint8_t *buf;
    size_t len;

    *pt = NULL;
    *ptLen = 0;
    if (inLen < GCM_IV + GCM_TAG) {
	return proto_err(err, "AES-GCM: %lu bytes is too short for IV and tag",
		(unsigned long) inLen);
    }
    len = inLen - GCM_IV - GCM_TAG;
    if ((buf = malloc(len ? len : 1)) == NULL) {
	return proto_err(err, "AES-GCM: no memory for %lu bytes",
		(unsigned long) len);
    }
    if (Gcm(0, key, in, aad, aadLen, in + GCM_IV, len, buf,
	    (uint8_t *) (in + GCM_IV + len)) != 0) {
	proto_clear_free(buf, len ? len : 1);
	return proto_err(err, "AES-GCM: authentication failed (wrong key, "
		"or the data or its associated data were altered)");
    }
    *pt = buf;
    *ptLen = len;
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * P-384 key helpers --
 *	Public keys cross the protocol as x || y (96 bytes).  Every public
 *	key that comes in is checked to be a point of the curve before it is
 *	used (invalid-curve attacks).
 *
 *----------------------------------------------------------------------
 */

static int
FromData(const uint8_t *point, size_t pointLen, const uint8_t *scalar,
	EVP_PKEY **pkey)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL, *check = NULL;
    BIGNUM *priv = NULL;
    int ok = 0;

    *pkey = NULL;
    if (scalar != NULL
	    && (priv = BN_secure_new()) != NULL
	    && BN_bin2bn(scalar, COORD, priv) == NULL) {
	goto done;
    }
    if (bld == NULL || (scalar != NULL && priv == NULL)
	    || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
		    "P-384", 0)
	    || (point != NULL && !OSSL_PARAM_BLD_push_octet_string(bld,
		    OSSL_PKEY_PARAM_PUB_KEY, point, pointLen))
	    || (priv != NULL && !OSSL_PARAM_BLD_push_BN(bld,
		    OSSL_PKEY_PARAM_PRIV_KEY, priv))
	    || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL
	    || (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL
	    || EVP_PKEY_fromdata_init(ctx) != 1
	    || EVP_PKEY_fromdata(ctx, pkey,
		    priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
		    params) != 1) {
	goto done;
    }
    if ((check = EVP_PKEY_CTX_new_from_pkey(NULL, *pkey, NULL)) == NULL
	    || EVP_PKEY_public_check_quick(check) != 1
	    || (priv != NULL && EVP_PKEY_pairwise_check(check) != 1)) {
	goto done;
    }
    ok = 1;

  done:
    if (!ok) {
	EVP_PKEY_free(*pkey);
	*pkey = NULL;
    }
    BN_clear_free(priv);
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    ERR_clear_error();
    return ok ? 0 : -1;
}

/* proto_p384_public_key --
 *	an EVP_PKEY of x || y, validated as a point of P-384. */
int
proto_p384_public_key(const uint8_t pub[PROTO_P384_PUB], EVP_PKEY **pkey,
	ProtoError *err)
{
    uint8_t point[1 + PROTO_P384_PUB];

    point[0] = POINT_CONVERSION_UNCOMPRESSED;
    memcpy(point + 1, pub, PROTO_P384_PUB);
    if (FromData(point, sizeof(point), NULL, pkey) != 0) {
	return proto_err(err, "not a valid P-384 public key (not a point of "
		"the curve)");
    }
    return 0;
}

/* proto_p384_valid -- 1 if x || y is a point of P-384. */
int
proto_p384_valid(const uint8_t pub[PROTO_P384_PUB])
{
    EVP_PKEY *pkey;

    if (proto_p384_public_key(pub, &pkey, NULL) != 0) {
	return 0;
    }
    EVP_PKEY_free(pkey);
    return 1;
}

/* proto_p384_public_bytes -- x || y of a P-384 EVP_PKEY. */
int
proto_p384_public_bytes(const EVP_PKEY *pkey, uint8_t pub[PROTO_P384_PUB])
{
    BIGNUM *x = NULL, *y = NULL;
    int ok;

    if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x)
	    || !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y)) {
	BN_free(x);
	ERR_clear_error();
	return -1;
    }
    ok = BN_bn2binpad(x, pub, COORD) == COORD
	    && BN_bn2binpad(y, pub + COORD, COORD) == COORD;
    BN_free(x);
    BN_free(y);
    return ok ? 0 : -1;
}

/* proto_p384_generate -- a fresh P-384 key pair and its x || y. */
int
proto_p384_generate(EVP_PKEY **pkey, uint8_t pub[PROTO_P384_PUB],
	ProtoError *err)
{
    if ((*pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384")) == NULL) {
	return proto_err_ossl(err, "P-384 key generation");
    }
    if (pub != NULL && proto_p384_public_bytes(*pkey, pub) != 0) {
	EVP_PKEY_free(*pkey);
	*pkey = NULL;
	return proto_err(err, "P-384 key generation: no public key");
    }
    return 0;
}

/* proto_p384_private_bytes --
 *	the private scalar of a P-384 key pair (48 bytes). */
int
proto_p384_private_bytes(const EVP_PKEY *pkey, uint8_t scalar[48])
{
    BIGNUM *priv = NULL;
    int ok;

    if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &priv)) {
	ERR_clear_error();
	return -1;
    }
    ok = BN_bn2binpad(priv, scalar, COORD) == COORD;
    BN_clear_free(priv);
    return ok ? 0 : -1;
}

/*
 * proto_p384_from_private --
 *	A key pair from its scalar: the public point is computed (EC_POINT
 *	arithmetic, which EVP does not offer) and the pair checked.
 */
int
proto_p384_from_private(const uint8_t scalar[48], EVP_PKEY **pkey,
	ProtoError *err)
{
    EC_GROUP *group = NULL;
    EC_POINT *pub = NULL;
    BIGNUM *priv = NULL;
    BN_CTX *bn = NULL;
    uint8_t point[1 + PROTO_P384_PUB];
    int ok = -1;

    *pkey = NULL;
    if ((group = EC_GROUP_new_by_curve_name(NID_secp384r1)) == NULL
	    || (bn = BN_CTX_secure_new()) == NULL
	    || (priv = BN_secure_new()) == NULL
	    || BN_bin2bn(scalar, COORD, priv) == NULL
	    || BN_is_zero(priv)
	    || BN_cmp(priv, EC_GROUP_get0_order(group)) >= 0
	    || (pub = EC_POINT_new(group)) == NULL
	    || !EC_POINT_mul(group, pub, priv, NULL, NULL, bn)
	    || EC_POINT_point2oct(group, pub, POINT_CONVERSION_UNCOMPRESSED,
		    point, sizeof(point), bn) != sizeof(point)) {
	goto done;
    }
    ok = FromData(point, sizeof(point), scalar, pkey);

  done:
    BN_clear_free(priv);
    EC_POINT_free(pub);
    EC_GROUP_free(group);
    BN_CTX_free(bn);
    ERR_clear_error();
    if (ok != 0) {
	return proto_err(err, "not a valid P-384 private key");
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_p384_ecdh --
 *	The shared x coordinate of priv with peer (x || y), the peer
 *	validated as a point of the curve first.
 *
 *----------------------------------------------------------------------
 */

int
proto_p384_ecdh(EVP_PKEY *priv, const uint8_t peer[PROTO_P384_PUB],
	uint8_t shared[48], ProtoError *err)
{
    EVP_PKEY *peerKey = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    size_t n = 48;
    int ok = 0;

    if (proto_p384_public_key(peer, &peerKey, err) != 0) {
	return proto_err(err, "ECDH: the peer key is not a valid P-384 "
		"public key");
    }
    if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL)) != NULL
	    && EVP_PKEY_derive_init(ctx) == 1
	    && EVP_PKEY_derive_set_peer_ex(ctx, peerKey, 1) == 1
	    && EVP_PKEY_derive(ctx, shared, &n) == 1 && n == 48) {
	ok = 1;
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peerKey);
    if (!ok) {
	OPENSSL_cleanse(shared, 48);
	return proto_err_ossl(err, "ECDH P-384");
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_p384_sign --
 *	ECDSA P-384 / SHA-384 with a software key, as r || s (the simulated
 *	silicon; HSM keys sign through role_sign).
 *
 *----------------------------------------------------------------------
 */

int
proto_p384_sign(EVP_PKEY *priv, const uint8_t *data, size_t len,
	uint8_t sig[PROTO_P384_SIG], ProtoError *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[128];
    const uint8_t *p = der;
    size_t derLen = sizeof(der);
    ECDSA_SIG *s = NULL;
    const BIGNUM *r, *sv;
    int ok = 0;

    if (md != NULL
	    && EVP_DigestSignInit_ex(md, NULL, "SHA384", NULL, NULL, priv,
		    NULL) == 1
	    && EVP_DigestSign(md, der, &derLen, data, len) == 1
	    && (s = d2i_ECDSA_SIG(NULL, &p, (long) derLen)) != NULL) {
	ECDSA_SIG_get0(s, &r, &sv);
	ok = BN_bn2binpad(r, sig, COORD) == COORD
		&& BN_bn2binpad(sv, sig + COORD, COORD) == COORD;
    }
    ECDSA_SIG_free(s);
    EVP_MD_CTX_free(md);
    if (!ok) {
	return proto_err_ossl(err, "ECDSA P-384 signature");
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_verify_p384 --
 *	ECDSA P-384 / SHA-384 verification of r || s: converted to DER for
 *	EVP (r and s out of range simply fail to verify).
 *
 *----------------------------------------------------------------------
 */

int
proto_verify_p384(const uint8_t pub[PROTO_P384_PUB], const uint8_t *data,
	size_t len, const uint8_t sig[PROTO_P384_SIG], ProtoError *err)
{
    static const uint8_t empty[1];
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *md = NULL;
    ECDSA_SIG *s = NULL;
    BIGNUM *r = NULL, *sv = NULL;
    uint8_t *der = NULL;
    int derLen, rc = -1, verified = 0;

    if (proto_p384_public_key(pub, &pkey, err) != 0) {
	return -1;
    }
    if ((s = ECDSA_SIG_new()) == NULL
	    || (r = BN_bin2bn(sig, COORD, NULL)) == NULL
	    || (sv = BN_bin2bn(sig + COORD, COORD, NULL)) == NULL
	    || ECDSA_SIG_set0(s, r, sv) != 1) {
	BN_free(r);
	BN_free(sv);
	proto_err(err, "ECDSA: no memory");
	goto done;
    }
    if ((derLen = i2d_ECDSA_SIG(s, &der)) <= 0
	    || (md = EVP_MD_CTX_new()) == NULL
	    || EVP_DigestVerifyInit_ex(md, NULL, "SHA384", NULL, NULL, pkey,
		    NULL) != 1) {
	proto_err_ossl(err, "ECDSA P-384 verification");
	goto done;
    }
    verified = EVP_DigestVerify(md, der, (size_t) derLen,
	    data != NULL ? data : empty, len) == 1;
    if (!verified) {
	proto_err(err, "the signature does not verify");
    } else {
	rc = 0;
    }

  done:
    ERR_clear_error();
    OPENSSL_free(der);
    ECDSA_SIG_free(s);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    return rc;
}

/*
 *----------------------------------------------------------------------
 *
 * SealKey --
 *	The AES-256 key of a sealed box: HKDF(ikm = ECDH x, salt = E ||
 *	recipient, info = "spps seal v1 " || label).
 *
 *----------------------------------------------------------------------
 */

static int
SealKey(const uint8_t shared[48], const uint8_t e[PROTO_P384_PUB],
	const uint8_t recipient[PROTO_P384_PUB], const char *label,
	uint8_t key[PROTO_KEY], ProtoError *err)
{
    uint8_t salt[2 * PROTO_P384_PUB];
    char info[160];

    if (label == NULL || strlen(label) > sizeof(info) - 16) {
	return proto_err(err, "seal: the purpose label is missing or too "
		"long");
    }
    snprintf(info, sizeof(info), "spps seal v1 %s", label);
    memcpy(salt, e, PROTO_P384_PUB);
    memcpy(salt + PROTO_P384_PUB, recipient, PROTO_P384_PUB);
    if (proto_hkdf(shared, 48, salt, sizeof(salt), info, key, PROTO_KEY) != 0) {
	return proto_err(err, "seal: key derivation failed");
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_seal_p384 --
 *	sealed = E (96) || IV (12) || AES-256-GCM(key, aad, pt) || tag (16).
 *
 *----------------------------------------------------------------------
 */

int
proto_seal_p384(const uint8_t recipient[PROTO_P384_PUB], const char *label,
	const uint8_t *aad, size_t aadLen, const uint8_t *pt, size_t ptLen,
	uint8_t **sealed, size_t *sealedLen, ProtoError *err)
{
    EVP_PKEY *eph = NULL;
    uint8_t e[PROTO_P384_PUB], shared[48], key[PROTO_KEY];
    uint8_t *box = NULL, *out = NULL;
    size_t boxLen = 0;
    int rc = -1;

    *sealed = NULL;
    *sealedLen = 0;
    if (proto_p384_generate(&eph, e, err) != 0) {
	return -1;
    }
    if (proto_p384_ecdh(eph, recipient, shared, err) != 0) {
	proto_err(err, "seal: the recipient key is not a valid P-384 public "
		"key");
	goto done;
    }
    if (SealKey(shared, e, recipient, label, key, err) != 0
	    || proto_gcm_encrypt(key, aad, aadLen, pt, ptLen, &box, &boxLen,
		err) != 0) {
	goto done;
    }
    if ((out = malloc(PROTO_P384_PUB + boxLen)) == NULL) {
	proto_err(err, "seal: no memory");
	goto done;
    }
    memcpy(out, e, PROTO_P384_PUB);
    memcpy(out + PROTO_P384_PUB, box, boxLen);
    *sealed = out;
    *sealedLen = PROTO_P384_PUB + boxLen;
    rc = 0;

  done:
    free(box);
    EVP_PKEY_free(eph);
    OPENSSL_cleanse(shared, sizeof(shared));
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_open_p384 --
 *	Opens a sealed box: E is validated, the recipient's ECDH is done by
 *	ecdhFn (inside its HSM), the key derived, GCM checked.
 *
 *----------------------------------------------------------------------
 */

int
proto_open_p384(const uint8_t recipient[PROTO_P384_PUB], const char *label,
	ProtoEcdhFn ecdhFn, void *ecdhCtx, const uint8_t *aad, size_t aadLen,
	const uint8_t *sealed, size_t sealedLen, uint8_t **pt, size_t *ptLen,
	ProtoError *err)
{
    uint8_t shared[48], key[PROTO_KEY];
    int rc = -1;

    *pt = NULL;
    *ptLen = 0;
    if (sealed == NULL || sealedLen < PROTO_P384_PUB + GCM_IV + GCM_TAG) {
	return proto_err(err, "sealed data is %lu bytes, too short to be "
		"sealed (at least %d)", (unsigned long) sealedLen,
		PROTO_P384_PUB + GCM_IV + GCM_TAG);
    }
    if (!proto_p384_valid(sealed)) {
	return proto_err(err, "sealed data: the ephemeral key is not a "
		"valid P-384 public key");
    }
    if (ecdhFn(ecdhCtx, sealed, shared, err) != 0) {
	OPENSSL_cleanse(shared, sizeof(shared));
	return -1;
    }
    if (SealKey(shared, sealed, recipient, label, key, err) == 0
	    && proto_gcm_decrypt(key, aad, aadLen, sealed + PROTO_P384_PUB,
		sealedLen - PROTO_P384_PUB, pt, ptLen, err) == 0) {
	rc = 0;
    } else if (rc != 0 && err != NULL
	    && strncmp(err->msg, "AES-GCM: auth", 13) == 0) {
	proto_err(err, "sealed data does not open: it was sealed to another "
		"key or for another purpose, or was altered");
    }
    OPENSSL_cleanse(shared, sizeof(shared));
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

/*
 *----------------------------------------------------------------------
 *
 * proto_coc_mac --
 *	AES-256-CMAC of the CoC's TBS under HKDF(KIP, salt = DSN,
 *	"spps coc v1").
 *
 *----------------------------------------------------------------------
 */

int
proto_coc_mac(const uint8_t kip[PROTO_KEY], const ProtoCoc *coc,
	uint8_t mac[PROTO_MAC], ProtoError *err)
{
    uint8_t key[PROTO_KEY];
    ProtoBuf tbs;
    int rc = -1;

    proto_buf_init(&tbs);
    if (proto_coc_tbs(coc, &tbs) != 0) {
	proto_err(err, "CoC: cannot encode it (missing action?)");
    } else if (proto_hkdf(kip, PROTO_KEY, coc->dsn, PROTO_DSN, "spps coc v1",
	    key, sizeof(key)) != 0
	    || proto_cmac(key, tbs.data, tbs.len, mac) != 0) {
	proto_err(err, "CoC: MAC computation failed");
    } else {
	rc = 0;
    }
    OPENSSL_cleanse(key, sizeof(key));
    proto_buf_free(&tbs);
    return rc;
}
