/*
 * hsm_int.h --
 *
 *	Engine internals shared by the modules of generic/hsm/.  Not part of
 *	the public API (hsm_api.h) and not for the roles (hsm_fw.h).
 *
 *	Module map:
 *	  hsm_algo.c      algorithm objects fetched once; key type table; EC key
 *	                  helpers (the only place that turns bytes into EVP_PKEYs)
 *	  hsm_error.c     error names and texts, the thread's last error
 *	  hsm_object.c    handle table, object tree, the operation bracket
 *	  hsm_device.c    devices (state directories): fuse, otp counter,
 *	                  manifest, NVM commit protocol, locks, fw blobs
 *	  hsm_keystore.c  key stores, key groups, the group cache, key lookup
 *	                  (hsm_op_key and its key-use checks)
 *	  hsm_keymgmt.c   generate_key, manage_key, manage_key_group, butterfly
 *	  hsm_storage.c   data storage, root KEK export, get_info
 *	  hsm_fw.c        the firmware interface (hsm_fw.h)
 *	  hsm_cipher.c    cipher_one_go, auth_enc, ecies encrypt/decrypt
 *	  hsm_sign.c      signature generation, verification, public key import
 *	  hsm_misc.c      rng, hash, mac, public key reconstruction,
 *	                  decompression and recovery
 *	hsm_core.h declares what the storage modules share among themselves.
 *
 *	Every API function that takes a handle follows one pattern:
 *
 *	    HsmOp op;
 *	    hsm_err_t err = hsm_op_begin(handle, HSM_KIND_CIPHER, &op);
 *	    if (err != HSM_NO_ERROR) return err;
 *	    ... hsm_op_key(&op, id, HSM_USE_CIPHER, &key) ...
 *	    ... work; on failure err = hsm_fail(CODE, "what and where", ...) ...
 *	    return hsm_op_end(&op, err);
 *
 *	hsm_op_begin finds the object and locks its device; hsm_op_end unlocks
 *	and records the thread's last error.  Between the two, keys returned by
 *	hsm_op_key stay valid.
 */

#ifndef SPPS_HSM_INT_H
#define SPPS_HSM_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "hsm_api.h"
#include "plat.h"

/* ------------------------------------------------------------------ */
/* Errors (hsm_error.c)                                                 */
/* ------------------------------------------------------------------ */

/*
 * hsm_fail --
 *	Records a sentence about what went wrong as the thread's error detail
 *	(see hsm_spps_last_error) and returns err, so that code can say
 *	    return hsm_fail(HSM_INVALID_PARAM, "iv_size is %u, must be 12", n);
 */
hsm_err_t hsm_fail(hsm_err_t err, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(printf, 2, 3)))
#endif
	;

/*
 * hsm_fail_ossl --
 *	HSM_GENERAL_ERROR with OpenSSL's reason appended to "what", and
 *	OpenSSL's error queue drained (so a later call sees only its own).
 */
hsm_err_t hsm_fail_ossl(const char *what);

/* hsm_clear_error -- the thread's detail becomes "" (a call succeeded). */
void hsm_clear_error(void);

/* ------------------------------------------------------------------ */
/* Algorithms and key types (hsm_algo.c)                                */
/* ------------------------------------------------------------------ */

typedef struct HsmKeyTypeInfo {
    hsm_key_type_t type;
    const char *name;		/* "ECDSA_NIST_P256", "AES_256" */
    int isEc;			/* 1 for EC key pairs, 0 for AES */
    int supported;		/* 0: the seed marks it "not supported" */
    const char *group;		/* OpenSSL group name ("P-256"), NULL for AES */
    size_t size;		/* AES: key bytes; EC: coordinate bytes */
    const char *digest;		/* EC: digest of its signature scheme */
} HsmKeyTypeInfo;

/* hsm_key_type_info -- the entry of a key type, NULL if unknown. */
const HsmKeyTypeInfo *hsm_key_type_info(hsm_key_type_t type);

/* The signature scheme id's key type and digest; 0 if unknown. */
hsm_key_type_t hsm_scheme_key_type(hsm_signature_scheme_id_t scheme);

/*
 * Algorithm objects, fetched once per process (thread-safe) and never
 * freed by callers.  NULL only if OpenSSL lacks the algorithm.
 */
typedef enum HsmAesMode {
    HSM_AES_ECB, HSM_AES_CBC, HSM_AES_CCM, HSM_AES_GCM, HSM_AES_CTR
} HsmAesMode;
const EVP_CIPHER *hsm_aes(size_t keyBytes, HsmAesMode mode);
const EVP_MD *hsm_md(const char *name);		/* "SHA256", "SHA384", ... */
EVP_MAC *hsm_mac_cmac(void);
EVP_MAC *hsm_mac_hmac(void);
EVP_KDF *hsm_kdf_hkdf(void);
EVP_KDF *hsm_kdf_x963(void);

/*
 * hsm_hkdf --
 *	HKDF-SHA-384 (RFC 5869) of ikm with the given salt and info label:
 *	the one derivation function of the engine.  Returns 0 or -1.
 */
int hsm_hkdf(const uint8_t *ikm, size_t ikmLen, const uint8_t *salt,
	size_t saltLen, const char *info, uint8_t *out, size_t outLen);

/*
 * EC keys.  Public keys cross the API as x || y (2 * size bytes, no
 * prefix byte); private keys are stored as the big-endian scalar (size
 * bytes).  These helpers are the only code that converts between bytes
 * and EVP_PKEY.
 */
int hsm_ec_generate(const HsmKeyTypeInfo *info, EVP_PKEY **pkey);
int hsm_ec_from_private(const HsmKeyTypeInfo *info, const uint8_t *scalar,
	size_t len, EVP_PKEY **pkey);
int hsm_ec_from_public(const HsmKeyTypeInfo *info, const uint8_t *xy,
	size_t len, EVP_PKEY **pkey);
/* hsm_ec_private_bytes -- the scalar, left-padded to info->size. */
int hsm_ec_private_bytes(const HsmKeyTypeInfo *info, const EVP_PKEY *pkey,
	uint8_t *out, size_t outLen);
/* hsm_ec_public_bytes -- x || y into out (outLen must be 2 * size). */
int hsm_ec_public_bytes(const HsmKeyTypeInfo *info, const EVP_PKEY *pkey,
	uint8_t *out, size_t outLen);

/* Secure memory for key bytes: OpenSSL's secure heap when it has one. */
uint8_t *hsm_secure_alloc(size_t len);
void hsm_secure_free(uint8_t *ptr, size_t len);	/* cleanses first */

/* ------------------------------------------------------------------ */
/* Keys                                                                 */
/* ------------------------------------------------------------------ */

typedef struct HsmKey {
    uint32_t id;
    hsm_key_type_t type;
    hsm_key_group_t group;
    hsm_key_info_t info;
    const HsmKeyTypeInfo *typeInfo;
    uint8_t *secret;		/* AES key or EC scalar (hsm_secure_alloc) */
    size_t secretLen;
    EVP_PKEY *pkey;		/* EC keys: built once; NULL for AES */
} HsmKey;

/* What an operation wants a key for; hsm_op_key checks the key allows it. */
typedef enum HsmKeyUse {
    HSM_USE_CIPHER,		/* cipher_one_go, auth_enc: AES, not KEK */
    HSM_USE_MAC,		/* mac_one_go: AES, not KEK */
    HSM_USE_SIGN,		/* generate_signature: EC, not KEK */
    HSM_USE_ECIES,		/* ecies_decryption: EC P-256 / BP256r1 */
    HSM_USE_PUBLIC,		/* pub_key_recovery: EC */
    HSM_USE_KEK,		/* manage_key: AES-256 with the KEK info bit */
    HSM_USE_DERIVE		/* butterfly expansion: EC with the MASTER bit */
} HsmKeyUse;

/* ------------------------------------------------------------------ */
/* Objects, handles and the operation bracket (hsm_object.c)            */
/* ------------------------------------------------------------------ */

typedef enum HsmKind {
    HSM_KIND_SESSION = 1,
    HSM_KIND_KEY_STORE,
    HSM_KIND_KEY_MANAGEMENT,
    HSM_KIND_CIPHER,
    HSM_KIND_SIGN_GEN,
    HSM_KIND_SIGN_VER,
    HSM_KIND_RNG,
    HSM_KIND_HASH,
    HSM_KIND_MAC,
    HSM_KIND_DATA_STORAGE
} HsmKind;

typedef struct HsmDevice HsmDevice;	/* hsm_device.c */
typedef struct HsmKeyStore HsmKeyStore;	/* hsm_keystore.c */

/*
 * HsmObject --
 *	What a handle names.  Services carry private state owned by the
 *	module that implements them (priv, freed with freePriv when the
 *	object closes).
 */
typedef struct HsmObject {
    hsm_hdl_t handle;
    HsmKind kind;
    HsmDevice *device;
    HsmKeyStore *keyStore;	/* the key store of key-store services */
    struct HsmObject *parent;
    void *priv;
    void (*freePriv)(void *priv);
} HsmObject;

/*
 * hsm_object_open --
 *	Creates an object of kind under the object named by parent (which
 *	must be of parentKind), with its private state, and returns its new
 *	handle.  On failure priv is freed with freePriv.
 */
hsm_err_t hsm_object_open(hsm_hdl_t parent, HsmKind parentKind, HsmKind kind,
	void *priv, void (*freePriv)(void *priv), hsm_hdl_t *handle);

/* hsm_object_close -- closes the object (of that kind) and its subtree. */
hsm_err_t hsm_object_close(hsm_hdl_t handle, HsmKind kind);

typedef struct HsmOp {
    HsmObject *obj;
} HsmOp;

/* The operation bracket: see the head of this file. */
hsm_err_t hsm_op_begin(hsm_hdl_t handle, HsmKind kind, HsmOp *op);
hsm_err_t hsm_op_key(HsmOp *op, uint32_t keyId, HsmKeyUse use,
	const HsmKey **key);
hsm_err_t hsm_op_end(HsmOp *op, hsm_err_t err);

/* The device's random generator (a DRBG of its own, seeded from the OS):
 * HSM_RNG_NOT_STARTED if it cannot produce. */
hsm_err_t hsm_device_random(HsmDevice *device, uint8_t *out, size_t len);

#endif /* SPPS_HSM_INT_H */
