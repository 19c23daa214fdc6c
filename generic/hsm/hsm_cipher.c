/*
 * hsm_cipher.c --
 *
 *	The cipher service of the engine: AES in ECB, CBC and CCM
 *	(hsm_cipher_one_go), AES-GCM (hsm_auth_enc), and ECIES as IEEE
 *	1609.2-2016 constrains it (hsm_ecies_decryption on a cipher service,
 *	hsm_ecies_encryption on a session).
 *
 *	A cipher service keeps one EVP_CIPHER_CTX for its whole life, so an
 *	operation costs a handle lookup, a key lookup, one re-initialisation
 *	(the key schedule) and the cipher itself.  Every result is produced in
 *	a scratch buffer of the service and copied to the caller's output only
 *	once the operation has succeeded (for CCM and GCM decryption: once the
 *	tag has been verified); the scratch buffer is cleansed after each use.
 *
 *	docs/ENGINE.md, "Cryptographic services", says what each function
 *	accepts and refuses.
 */

#include "hsm_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>

/* Sizes fixed by the seed. */
#define AES_BLOCK	16
#define GCM_IV		12
#define GCM_TAG		16
#define CCM_NONCE	12
#define CCM_TAG		16
#define CBC_IV		16

/* ECIES (IEEE 1609.2-2016 constraints of the seed). */
#define ECIES_COORD	32		/* P-256 and brainpoolP256r1 */
#define ECIES_V		(2 * ECIES_COORD)
#define ECIES_MSG	16
#define ECIES_TAG	16
#define ECIES_VCT	(ECIES_V + ECIES_MSG + ECIES_TAG)
#define ECIES_P1	32
#define ECIES_KENC	16
#define ECIES_KMAC	32

/*
 * Largest input of one operation.  EVP takes lengths as int; the margin
 * leaves room for a tag.
 */
#define CIPHER_MAX_INPUT ((uint32_t) INT_MAX - 64)

/* Results up to this size are made in the service's own scratch buffer. */
#define SCRATCH_SIZE	2048

typedef struct CipherService {
    EVP_CIPHER_CTX *ctx;	/* reused by every operation */
    const EVP_CIPHER *last;	/* the cipher ctx was last set up for */
    uint8_t scratch[SCRATCH_SIZE];
} CipherService;

/*
 *----------------------------------------------------------------------
 *
 * FreeCipherService --
 *	Frees a cipher service's state when its object closes.
 *
 *----------------------------------------------------------------------
 */

static void
FreeCipherService(void *priv)
{
    CipherService *svc = priv;

    if (svc != NULL) {
	EVP_CIPHER_CTX_free(svc->ctx);
	OPENSSL_cleanse(svc->scratch, sizeof(svc->scratch));
	free(svc);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_open_cipher_service --
 *	Opens a cipher service on a key store service.  No service flags are
 *	defined; their value is ignored.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_open_cipher_service(hsm_hdl_t key_store_hdl, open_svc_cipher_args_t *args,
	hsm_hdl_t *cipher_hdl)
{
    CipherService *svc;

    if (args == NULL || cipher_hdl == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "open cipher service: %s is NULL",
		args == NULL ? "args" : "cipher_hdl");
    }
    if ((svc = calloc(1, sizeof(*svc))) == NULL
	    || (svc->ctx = EVP_CIPHER_CTX_new()) == NULL) {
	free(svc);
	return hsm_fail(HSM_OUT_OF_MEMORY,
		"open cipher service: out of memory for its context");
    }
    return hsm_object_open(key_store_hdl, HSM_KIND_KEY_STORE, HSM_KIND_CIPHER,
	    svc, FreeCipherService, cipher_hdl);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_close_cipher_service --
 *	Closes a cipher service.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_close_cipher_service(hsm_hdl_t cipher_hdl)
{
    return hsm_object_close(cipher_hdl, HSM_KIND_CIPHER);
}

/*
 *----------------------------------------------------------------------
 *
 * ScratchGet, ScratchRelease --
 *	A buffer of len bytes for a result: the service's own when it is big
 *	enough, else a heap buffer.  Release cleanses the bytes used and
 *	frees a heap buffer.
 *
 *----------------------------------------------------------------------
 */

static uint8_t *
ScratchGet(CipherService *svc, size_t len)
{
    if (len <= sizeof(svc->scratch)) {
	return svc->scratch;
    }
    return OPENSSL_malloc(len);
}

static void
ScratchRelease(CipherService *svc, uint8_t *buf, size_t len)
{
    if (buf == NULL) {
	return;
    }
    if (buf == svc->scratch) {
	OPENSSL_cleanse(buf, len);
    } else {
	OPENSSL_clear_free(buf, len);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * CipherSetup --
 *	Sets the service's context up for cipher with key and iv.  When the
 *	context already runs that cipher only the key and IV are set (the
 *	cheap path); params, if any, are applied before the key.
 *
 *----------------------------------------------------------------------
 */

static int
CipherSetup(CipherService *svc, const EVP_CIPHER *cipher, const uint8_t *key,
	const uint8_t *iv, int enc, const OSSL_PARAM *params)
{
    if (svc->last != cipher || params != NULL) {
	svc->last = NULL;
	if (EVP_CipherInit_ex2(svc->ctx, cipher, NULL, NULL, enc, params) != 1) {
	    return 0;
	}
	svc->last = cipher;
    }
    return EVP_CipherInit_ex2(svc->ctx, NULL, key, iv, enc, NULL) == 1;
}

/* The HsmAesMode name for messages. */
static const char *
AlgoName(hsm_op_cipher_one_go_algo_t algo)
{
    switch (algo) {
    case HSM_CIPHER_ONE_GO_ALGO_AES_ECB: return "AES-ECB";
    case HSM_CIPHER_ONE_GO_ALGO_AES_CBC: return "AES-CBC";
    case HSM_CIPHER_ONE_GO_ALGO_AES_CCM: return "AES-CCM";
    default: return "?";
    }
}

/*
 *----------------------------------------------------------------------
 *
 * CipherCheckArgs --
 *	Checks the arguments of hsm_cipher_one_go that do not depend on the
 *	key.  Sets *mode and *outLen (the output size the operation makes).
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
CipherCheckArgs(const op_cipher_one_go_args_t *args, HsmAesMode *mode,
	uint32_t *outLen)
{
    int enc;
    const char *name = AlgoName(args->cipher_algo);

    if (args->flags & ~HSM_CIPHER_ONE_GO_FLAGS_ENCRYPT) {
	return hsm_fail(HSM_INVALID_PARAM,
		"cipher_one_go: flags is 0x%02x, only bit 0 (ENCRYPT) is defined",
		args->flags);
    }
    enc = (args->flags & HSM_CIPHER_ONE_GO_FLAGS_ENCRYPT) != 0;
    if (args->input_size > CIPHER_MAX_INPUT) {
	return hsm_fail(HSM_INVALID_PARAM,
		"cipher_one_go: input_size is %u, at most %u is supported",
		args->input_size, CIPHER_MAX_INPUT);
    }
    switch (args->cipher_algo) {
    case HSM_CIPHER_ONE_GO_ALGO_AES_ECB:
    case HSM_CIPHER_ONE_GO_ALGO_AES_CBC: {
	int cbc = args->cipher_algo == HSM_CIPHER_ONE_GO_ALGO_AES_CBC;
	uint16_t want = cbc ? CBC_IV : 0;

	*mode = cbc ? HSM_AES_CBC : HSM_AES_ECB;
	if (args->iv_size != want) {
	    return hsm_fail(HSM_INVALID_PARAM,
		    "cipher_one_go %s: iv_size is %u, must be %u", name,
		    args->iv_size, want);
	}
	if (args->input_size == 0 || args->input_size % AES_BLOCK != 0) {
	    return hsm_fail(HSM_INVALID_PARAM,
		    "cipher_one_go %s: input_size is %u, must be a non-zero "
		    "multiple of %d (no padding)", name, args->input_size,
		    AES_BLOCK);
	}
	*outLen = args->input_size;
	break;
    }
    case HSM_CIPHER_ONE_GO_ALGO_AES_CCM:
	*mode = HSM_AES_CCM;
	if (args->iv_size != CCM_NONCE) {
	    return hsm_fail(HSM_INVALID_PARAM,
		    "cipher_one_go AES-CCM: iv_size (nonce) is %u, must be %d",
		    args->iv_size, CCM_NONCE);
	}
	if (enc) {
	    *outLen = args->input_size + CCM_TAG;
	} else {
	    if (args->input_size < CCM_TAG) {
		return hsm_fail(HSM_INVALID_PARAM,
			"cipher_one_go AES-CCM decrypt: input_size is %u, must "
			"be at least %d (ciphertext || tag)", args->input_size,
			CCM_TAG);
	    }
	    *outLen = args->input_size - CCM_TAG;
	}
	break;
    default:
	return hsm_fail(HSM_INVALID_PARAM,
		"cipher_one_go: cipher_algo is 0x%02x, must be AES_ECB (0x00), "
		"AES_CBC (0x01) or AES_CCM (0x04)", args->cipher_algo);
    }
    if (args->output_size != *outLen) {
	return hsm_fail(HSM_INVALID_PARAM,
		"cipher_one_go %s %s: output_size is %u, must be %u for "
		"input_size %u", name, enc ? "encrypt" : "decrypt",
		args->output_size, *outLen, args->input_size);
    }
    if (args->iv_size > 0 && args->iv == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "cipher_one_go %s: iv is NULL",
		name);
    }
    if (args->input_size > 0 && args->input == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "cipher_one_go %s: input is NULL",
		name);
    }
    if (*outLen > 0 && args->output == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS,
		"cipher_one_go %s: output is NULL", name);
    }
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_cipher_one_go --
 *	AES-ECB or AES-CBC without padding, or AES-CCM with a 12-byte nonce,
 *	no associated data and a 16-byte tag (encryption writes ciphertext
 *	|| tag; decryption reads ciphertext || tag and releases nothing
 *	unless the tag is right).
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_cipher_one_go(hsm_hdl_t cipher_hdl, op_cipher_one_go_args_t *args)
{
    HsmOp op;
    const HsmKey *key;
    CipherService *svc;
    const EVP_CIPHER *cipher;
    HsmAesMode mode = HSM_AES_ECB;
    uint32_t outLen = 0;
    uint8_t *buf = NULL;
    int enc, n, fin;
    hsm_err_t err;

    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "cipher_one_go: args is NULL");
    }
    if ((err = hsm_op_begin(cipher_hdl, HSM_KIND_CIPHER, &op)) != HSM_NO_ERROR) {
	return err;
    }
    svc = op.obj->priv;
    enc = (args->flags & HSM_CIPHER_ONE_GO_FLAGS_ENCRYPT) != 0;
    if ((err = CipherCheckArgs(args, &mode, &outLen)) != HSM_NO_ERROR
	    || (err = hsm_op_key(&op, args->key_identifier, HSM_USE_CIPHER,
		    &key)) != HSM_NO_ERROR) {
	goto done;
    }
    if ((cipher = hsm_aes(key->secretLen, mode)) == NULL) {
	err = hsm_fail(HSM_GENERAL_ERROR,
		"cipher_one_go: OpenSSL has no AES-%d-%s", (int) key->secretLen * 8,
		AlgoName(args->cipher_algo) + 4);
	goto done;
    }
    if ((buf = ScratchGet(svc, outLen ? outLen : 1)) == NULL) {
	err = hsm_fail(HSM_OUT_OF_MEMORY,
		"cipher_one_go: out of memory for %u bytes of output", outLen);
	goto done;
    }

    if (mode != HSM_AES_CCM) {
	if (!CipherSetup(svc, cipher, key->secret, args->iv, enc, NULL)
		|| EVP_CIPHER_CTX_set_padding(svc->ctx, 0) != 1
		|| EVP_CipherUpdate(svc->ctx, buf, &n, args->input,
			(int) args->input_size) != 1
		|| EVP_CipherFinal_ex(svc->ctx, buf + n, &fin) != 1
		|| (uint32_t) (n + fin) != outLen) {
	    err = hsm_fail_ossl("cipher_one_go: AES operation failed");
	    goto done;
	}
    } else {
	OSSL_PARAM params[3];
	size_t nonceLen = CCM_NONCE;
	uint32_t dataLen = enc ? args->input_size : outLen;

	params[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN,
		&nonceLen);
	if (enc) {
	    params[1] = OSSL_PARAM_construct_octet_string(
		    OSSL_CIPHER_PARAM_AEAD_TAG, NULL, CCM_TAG);
	} else {
	    params[1] = OSSL_PARAM_construct_octet_string(
		    OSSL_CIPHER_PARAM_AEAD_TAG, args->input + dataLen, CCM_TAG);
	}
	params[2] = OSSL_PARAM_construct_end();
	if (!CipherSetup(svc, cipher, key->secret, args->iv, enc, params)
		|| EVP_CipherUpdate(svc->ctx, NULL, &n, NULL, (int) dataLen) != 1) {
	    err = hsm_fail_ossl("cipher_one_go: AES-CCM set-up failed");
	    goto done;
	}
	/*
	 * For decryption the tag is checked by this update: on a mismatch
	 * it fails and the scratch buffer (cleansed below) is all that saw
	 * the unverified plaintext.
	 */
	if (EVP_CipherUpdate(svc->ctx, buf, &n, dataLen ? args->input : buf,
		(int) dataLen) != 1) {
	    ERR_clear_error();
	    err = enc ? hsm_fail_ossl("cipher_one_go: AES-CCM encryption failed")
		    : hsm_fail(HSM_GENERAL_ERROR, "cipher_one_go AES-CCM decrypt: "
		    "tag mismatch (ciphertext, tag, nonce or key is wrong); "
		    "no plaintext released");
	    goto done;
	}
	if (enc) {
	    OSSL_PARAM get[2];

	    get[0] = OSSL_PARAM_construct_octet_string(
		    OSSL_CIPHER_PARAM_AEAD_TAG, buf + dataLen, CCM_TAG);
	    get[1] = OSSL_PARAM_construct_end();
	    if (EVP_CIPHER_CTX_get_params(svc->ctx, get) != 1) {
		err = hsm_fail_ossl("cipher_one_go: AES-CCM tag not available");
		goto done;
	    }
	}
    }
    if (outLen > 0) {
	memcpy(args->output, buf, outLen);
    }

  done:
    if (buf != NULL) {
	ScratchRelease(svc, buf, outLen ? outLen : 1);
    }
    return hsm_op_end(&op, err);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_auth_enc --
 *	AES-GCM with a 12-byte IV, optional AAD and a 16-byte tag.
 *	Encryption writes ciphertext || tag; decryption reads ciphertext ||
 *	tag and writes the plaintext only if the tag is right.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_auth_enc(hsm_hdl_t cipher_hdl, op_auth_enc_args_t *args)
{
    HsmOp op;
    const HsmKey *key;
    CipherService *svc;
    const EVP_CIPHER *cipher;
    uint32_t outLen = 0, dataLen;
    uint8_t *buf = NULL;
    int enc, n, fin;
    hsm_err_t err;

    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "auth_enc: args is NULL");
    }
    if ((err = hsm_op_begin(cipher_hdl, HSM_KIND_CIPHER, &op)) != HSM_NO_ERROR) {
	return err;
    }
    svc = op.obj->priv;
    enc = (args->flags & HSM_AUTH_ENC_FLAGS_ENCRYPT) != 0;

    if (args->ae_algo != HSM_AUTH_ENC_ALGO_AES_GCM) {
	err = hsm_fail(HSM_INVALID_PARAM,
		"auth_enc: ae_algo is 0x%02x, must be AES_GCM (0x00)",
		args->ae_algo);
	goto done;
    }
    if (args->flags & ~HSM_AUTH_ENC_FLAGS_ENCRYPT) {
	err = hsm_fail(HSM_INVALID_PARAM,
		"auth_enc: flags is 0x%02x, only bit 0 (ENCRYPT) is defined",
		args->flags);
	goto done;
    }
    if (args->iv_size != GCM_IV) {
	err = hsm_fail(HSM_INVALID_PARAM, "auth_enc AES-GCM: iv_size is %u, "
		"must be %d", args->iv_size, GCM_IV);
	goto done;
    }
    if (args->input_size > CIPHER_MAX_INPUT) {
	err = hsm_fail(HSM_INVALID_PARAM,
		"auth_enc: input_size is %u, at most %u is supported",
		args->input_size, CIPHER_MAX_INPUT);
	goto done;
    }
    if (enc) {
	dataLen = args->input_size;
	outLen = dataLen + GCM_TAG;
    } else {
	if (args->input_size < GCM_TAG) {
	    err = hsm_fail(HSM_INVALID_PARAM, "auth_enc AES-GCM decrypt: "
		    "input_size is %u, must be at least %d (ciphertext || tag)",
		    args->input_size, GCM_TAG);
	    goto done;
	}
	dataLen = outLen = args->input_size - GCM_TAG;
    }
    if (args->output_size != outLen) {
	err = hsm_fail(HSM_INVALID_PARAM, "auth_enc AES-GCM %s: output_size is "
		"%u, must be %u for input_size %u", enc ? "encrypt" : "decrypt",
		args->output_size, outLen, args->input_size);
	goto done;
    }
    if (args->iv == NULL || (args->aad_size > 0 && args->aad == NULL)
	    || (args->input_size > 0 && args->input == NULL)
	    || (outLen > 0 && args->output == NULL)) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "auth_enc: %s is NULL",
		args->iv == NULL ? "iv" : (args->aad_size > 0 && args->aad == NULL)
		? "aad" : (args->input_size > 0 && args->input == NULL)
		? "input" : "output");
	goto done;
    }
    if ((err = hsm_op_key(&op, args->key_identifier, HSM_USE_CIPHER, &key))
	    != HSM_NO_ERROR) {
	goto done;
    }
    if ((cipher = hsm_aes(key->secretLen, HSM_AES_GCM)) == NULL) {
	err = hsm_fail(HSM_GENERAL_ERROR, "auth_enc: OpenSSL has no AES-%d-GCM",
		(int) key->secretLen * 8);
	goto done;
    }
    if ((buf = ScratchGet(svc, outLen ? outLen : 1)) == NULL) {
	err = hsm_fail(HSM_OUT_OF_MEMORY,
		"auth_enc: out of memory for %u bytes of output", outLen);
	goto done;
    }
    /* 12 bytes is GCM's default IV length: no parameter needed. */
    if (!CipherSetup(svc, cipher, key->secret, args->iv, enc, NULL)
	    || (args->aad_size > 0 && EVP_CipherUpdate(svc->ctx, NULL, &n,
		    args->aad, args->aad_size) != 1)
	    || (dataLen > 0 && EVP_CipherUpdate(svc->ctx, buf, &n, args->input,
		    (int) dataLen) != 1)) {
	err = hsm_fail_ossl("auth_enc: AES-GCM operation failed");
	goto done;
    }
    if (enc) {
	OSSL_PARAM get[2];

	get[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
		buf + dataLen, GCM_TAG);
	get[1] = OSSL_PARAM_construct_end();
	if (EVP_CipherFinal_ex(svc->ctx, buf + dataLen, &fin) != 1
		|| EVP_CIPHER_CTX_get_params(svc->ctx, get) != 1) {
	    err = hsm_fail_ossl("auth_enc: AES-GCM tag not available");
	    goto done;
	}
    } else {
	OSSL_PARAM set[2];

	set[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
		args->input + dataLen, GCM_TAG);
	set[1] = OSSL_PARAM_construct_end();
	if (EVP_CIPHER_CTX_set_params(svc->ctx, set) != 1) {
	    err = hsm_fail_ossl("auth_enc: AES-GCM tag not accepted");
	    goto done;
	}
	if (EVP_CipherFinal_ex(svc->ctx, buf + dataLen, &fin) != 1) {
	    ERR_clear_error();
	    err = hsm_fail(HSM_GENERAL_ERROR, "auth_enc AES-GCM decrypt: tag "
		    "mismatch (ciphertext, tag, AAD, IV or key is wrong); no "
		    "plaintext released");
	    goto done;
	}
    }
    if (outLen > 0) {
	memcpy(args->output, buf, outLen);
    }

  done:
    if (buf != NULL) {
	ScratchRelease(svc, buf, outLen ? outLen : 1);
    }
    return hsm_op_end(&op, err);
}

/* ------------------------------------------------------------------ */
/* ECIES                                                                */
/* ------------------------------------------------------------------ */

/*
 *----------------------------------------------------------------------
 *
 * EciesKeyInfo --
 *	The key type entry of an ECIES key type: NIST P-256 or brainpool
 *	P256r1.  Other EC types are refused as not supported (the seed
 *	says so), anything else as an invalid parameter.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
EciesKeyInfo(const char *fn, hsm_key_type_t type, const HsmKeyTypeInfo **info)
{
    *info = hsm_key_type_info(type);
    if (type == HSM_KEY_TYPE_ECDSA_NIST_P256
	    || type == HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256) {
	return HSM_NO_ERROR;
    }
    if (*info != NULL && (*info)->isEc) {
	return hsm_fail(HSM_FEATURE_NOT_SUPPORTED, "%s: key_type %s (0x%02x) "
		"is not supported: ECIES takes NIST P-256 (0x02) or brainpool "
		"P256r1 (0x13)", fn, (*info)->name, type);
    }
    return hsm_fail(HSM_INVALID_PARAM, "%s: key_type is 0x%02x, must be NIST "
	    "P-256 (0x02) or brainpool P256r1 (0x13)", fn, type);
}

/*
 *----------------------------------------------------------------------
 *
 * EciesCheckSizes --
 *	The sizes the seed fixes for ECIES (IEEE 1609.2-2016): 16-byte
 *	message, 32-byte P1, no P2, 16-byte tag, 96-byte VCT.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
EciesCheckSizes(const char *fn, uint32_t msgSize, uint32_t vctSize,
	const char *msgName, const char *vctName, uint16_t p1Size,
	uint16_t p2Size, uint16_t macSize)
{
    if (msgSize != ECIES_MSG) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: %s is %u, must be %d", fn,
		msgName, msgSize, ECIES_MSG);
    }
    if (vctSize != ECIES_VCT) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: %s is %u, must be %d (V 64 || "
		"C 16 || T 16)", fn, vctName, vctSize, ECIES_VCT);
    }
    if (p1Size != ECIES_P1) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: p1_size is %u, must be %d", fn,
		p1Size, ECIES_P1);
    }
    if (p2Size != 0) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: p2_size is %u, must be 0 (P2 "
		"is not used)", fn, p2Size);
    }
    if (macSize != ECIES_TAG) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: mac_size is %u, must be %d", fn,
		macSize, ECIES_TAG);
    }
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * EciesKeys --
 *	The shared secret of priv and peer (ECDH: the x coordinate), then
 *	K = X9.63-KDF-SHA-256(Z, P1) of 48 bytes, split into k_enc (16) and
 *	k_mac (32).  Every intermediate is cleansed.  Returns 0 or -1 (with
 *	the thread's error set).
 *
 *----------------------------------------------------------------------
 */

static int
EciesKeys(const char *fn, EVP_PKEY *priv, EVP_PKEY *peer, const uint8_t *p1,
	uint8_t kEnc[ECIES_KENC], uint8_t kMac[ECIES_KMAC])
{
    EVP_PKEY_CTX *dh = NULL;
    EVP_KDF_CTX *kdf = NULL;
    EVP_KDF *x963 = hsm_kdf_x963();
    uint8_t z[ECIES_COORD], k[ECIES_KENC + ECIES_KMAC];
    size_t zLen = sizeof(z);
    OSSL_PARAM params[4];
    int ok = 0;

    if (x963 == NULL) {
	hsm_fail(HSM_GENERAL_ERROR, "%s: OpenSSL has no X963KDF", fn);
	return -1;
    }
    if ((dh = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL)) == NULL
	    || EVP_PKEY_derive_init(dh) != 1
	    || EVP_PKEY_derive_set_peer(dh, peer) != 1
	    || EVP_PKEY_derive(dh, z, &zLen) != 1 || zLen != sizeof(z)) {
	char what[80];

	snprintf(what, sizeof(what), "%s: ECDH failed", fn);
	hsm_fail_ossl(what);
	goto done;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, z,
	    sizeof(z));
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	    (void *) p1, ECIES_P1);
    params[3] = OSSL_PARAM_construct_end();
    if ((kdf = EVP_KDF_CTX_new(x963)) == NULL
	    || EVP_KDF_derive(kdf, k, sizeof(k), params) != 1) {
	char what[80];

	snprintf(what, sizeof(what), "%s: KDF2 (X9.63, SHA-256) failed", fn);
	hsm_fail_ossl(what);
	goto done;
    }
    memcpy(kEnc, k, ECIES_KENC);
    memcpy(kMac, k + ECIES_KENC, ECIES_KMAC);
    ok = 1;

  done:
    OPENSSL_cleanse(z, sizeof(z));
    OPENSSL_cleanse(k, sizeof(k));
    EVP_KDF_CTX_free(kdf);
    EVP_PKEY_CTX_free(dh);
    return ok ? 0 : -1;
}

/*
 *----------------------------------------------------------------------
 *
 * EciesTag --
 *	T = HMAC-SHA-256(k_mac, C), truncated to 16 bytes (P2 is empty).
 *
 *----------------------------------------------------------------------
 */

static int
EciesTag(const char *fn, const uint8_t kMac[ECIES_KMAC],
	const uint8_t c[ECIES_MSG], uint8_t tag[ECIES_TAG])
{
    EVP_MAC *hmac = hsm_mac_hmac();
    EVP_MAC_CTX *ctx = NULL;
    uint8_t full[32];
    size_t fullLen = 0;
    OSSL_PARAM params[2];
    int ok = 0;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (hmac == NULL || (ctx = EVP_MAC_CTX_new(hmac)) == NULL
	    || EVP_MAC_init(ctx, kMac, ECIES_KMAC, params) != 1
	    || EVP_MAC_update(ctx, c, ECIES_MSG) != 1
	    || EVP_MAC_final(ctx, full, &fullLen, sizeof(full)) != 1
	    || fullLen != sizeof(full)) {
	char what[80];

	snprintf(what, sizeof(what), "%s: HMAC-SHA-256 failed", fn);
	hsm_fail_ossl(what);
	goto done;
    }
    memcpy(tag, full, ECIES_TAG);
    ok = 1;

  done:
    OPENSSL_cleanse(full, sizeof(full));
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : -1;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_ecies_encryption --
 *	ECIES encryption of a 16-byte message to a recipient's public key
 *	x || y (IEEE 1609.2-2016): a fresh ephemeral key pair (v, V), Z the
 *	x coordinate of v * R, k_enc || k_mac = X9.63-KDF-SHA-256(Z, P1),
 *	C = M xor k_enc, T = HMAC-SHA-256(k_mac, C)[0..15]; the output is
 *	V (x || y) || C || T.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_ecies_encryption(hsm_hdl_t session_hdl, op_ecies_enc_args_t *args)
{
    static const char fn[] = "ecies_encryption";
    HsmOp op;
    const HsmKeyTypeInfo *info;
    EVP_PKEY *peer = NULL, *eph = NULL;
    uint8_t kEnc[ECIES_KENC], kMac[ECIES_KMAC], vct[ECIES_VCT];
    hsm_err_t err;
    int i;

    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: args is NULL", fn);
    }
    if ((err = hsm_op_begin(session_hdl, HSM_KIND_SESSION, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    if ((err = EciesKeyInfo(fn, args->key_type, &info)) != HSM_NO_ERROR
	    || (err = EciesCheckSizes(fn, args->input_size, args->out_size,
		    "input_size", "out_size", args->p1_size, args->p2_size,
		    args->mac_size)) != HSM_NO_ERROR) {
	goto done;
    }
    if (args->flags != 0) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags is 0x%02x, no flag is "
		"defined", fn, args->flags);
	goto done;
    }
    if (args->pub_key_size != 2 * info->size) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: pub_key_size is %u, must be %u "
		"(x || y)", fn, args->pub_key_size, (unsigned) (2 * info->size));
	goto done;
    }
    if (args->input == NULL || args->pub_key == NULL || args->p1 == NULL
	    || args->output == NULL) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "%s: %s is NULL", fn,
		args->input == NULL ? "input" : args->pub_key == NULL
		? "pub_key" : args->p1 == NULL ? "p1" : "output");
	goto done;
    }
    if (hsm_ec_from_public(info, args->pub_key, args->pub_key_size, &peer)) {
	ERR_clear_error();
	err = hsm_fail(HSM_INVALID_PARAM, "%s: pub_key is not a point of %s",
		fn, info->group);
	goto done;
    }
    if (hsm_ec_generate(info, &eph)
	    || hsm_ec_public_bytes(info, eph, vct, ECIES_V)) {
	err = hsm_fail_ossl("ecies_encryption: ephemeral key generation failed");
	goto done;
    }
    if (EciesKeys(fn, eph, peer, args->p1, kEnc, kMac)) {
	err = HSM_GENERAL_ERROR;
	goto done;
    }
    for (i = 0; i < ECIES_MSG; i++) {
	vct[ECIES_V + i] = args->input[i] ^ kEnc[i];
    }
    if (EciesTag(fn, kMac, vct + ECIES_V, vct + ECIES_V + ECIES_MSG)) {
	err = HSM_GENERAL_ERROR;
	goto done;
    }
    memcpy(args->output, vct, ECIES_VCT);

  done:
    OPENSSL_cleanse(kEnc, sizeof(kEnc));
    OPENSSL_cleanse(kMac, sizeof(kMac));
    EVP_PKEY_free(eph);
    EVP_PKEY_free(peer);
    return hsm_op_end(&op, err);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_ecies_decryption --
 *	The reverse of hsm_ecies_encryption with the recipient's private key
 *	from the key store: V must be a point of the key's curve, the tag is
 *	compared in constant time, and the plaintext M = C xor k_enc is
 *	written only if it matches.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_ecies_decryption(hsm_hdl_t cipher_hdl, op_ecies_dec_args_t *args)
{
    static const char fn[] = "ecies_decryption";
    HsmOp op;
    const HsmKey *key;
    const HsmKeyTypeInfo *info;
    EVP_PKEY *peer = NULL;
    uint8_t kEnc[ECIES_KENC], kMac[ECIES_KMAC], tag[ECIES_TAG], m[ECIES_MSG];
    hsm_err_t err;
    int i;

    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: args is NULL", fn);
    }
    if ((err = hsm_op_begin(cipher_hdl, HSM_KIND_CIPHER, &op)) != HSM_NO_ERROR) {
	return err;
    }
    memset(tag, 0, sizeof(tag));
    memset(kEnc, 0, sizeof(kEnc));
    memset(kMac, 0, sizeof(kMac));
    memset(m, 0, sizeof(m));
    if ((err = EciesKeyInfo(fn, args->key_type, &info)) != HSM_NO_ERROR
	    || (err = EciesCheckSizes(fn, args->output_size, args->input_size,
		    "output_size", "input_size", args->p1_size, args->p2_size,
		    args->mac_size)) != HSM_NO_ERROR) {
	goto done;
    }
    if (args->flags != 0) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags is 0x%02x, no flag is "
		"defined", fn, args->flags);
	goto done;
    }
    if (args->input == NULL || args->p1 == NULL || args->output == NULL) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "%s: %s is NULL", fn,
		args->input == NULL ? "input" : args->p1 == NULL ? "p1"
		: "output");
	goto done;
    }
    if ((err = hsm_op_key(&op, args->key_identifier, HSM_USE_ECIES, &key))
	    != HSM_NO_ERROR) {
	goto done;
    }
    if (key->type != args->key_type) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: key_type is %s (0x%02x) but key "
		"%u is %s (0x%02x)", fn, info->name, args->key_type, key->id,
		key->typeInfo->name, key->type);
	goto done;
    }
    if (hsm_ec_from_public(info, args->input, ECIES_V, &peer)) {
	ERR_clear_error();
	err = hsm_fail(HSM_INVALID_PARAM, "%s: V (input bytes 0..63) is not a "
		"point of %s", fn, info->group);
	goto done;
    }
    if (EciesKeys(fn, key->pkey, peer, args->p1, kEnc, kMac)
	    || EciesTag(fn, kMac, args->input + ECIES_V, tag)) {
	err = HSM_GENERAL_ERROR;
	goto done;
    }
    if (CRYPTO_memcmp(tag, args->input + ECIES_V + ECIES_MSG, ECIES_TAG) != 0) {
	err = hsm_fail(HSM_GENERAL_ERROR, "%s: tag mismatch (VCT, P1 or key is "
		"wrong); no plaintext released", fn);
	goto done;
    }
    for (i = 0; i < ECIES_MSG; i++) {
	m[i] = args->input[ECIES_V + i] ^ kEnc[i];
    }
    memcpy(args->output, m, ECIES_MSG);

  done:
    OPENSSL_cleanse(kEnc, sizeof(kEnc));
    OPENSSL_cleanse(kMac, sizeof(kMac));
    OPENSSL_cleanse(m, sizeof(m));
    OPENSSL_cleanse(tag, sizeof(tag));
    EVP_PKEY_free(peer);
    return hsm_op_end(&op, err);
}
